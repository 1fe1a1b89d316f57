/** File helpers shared by the writers of model files. */

import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { open, readdir, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

import { OptionError } from './errors.js'
import { describe, filePath } from './validate.js'

/**
 * Writes `data` to `path` atomically: into a new temporary file in the same folder
 * (`.<name>.<random>.tmp`), flushed to disk (`fsync`), then renamed over `path`. A
 * reader sees the old file or the whole new one, never a part; on any failure the
 * temporary file is removed and the old file is left as it was.
 *
 * The new file gets the default mode (0o666 less the umask), not the old file's.
 *
 * ```ts
 * await writeFileAtomic('model.onnx', bytes)
 * ```
 * @throws the file system's error (`ENOENT` for a missing folder, `EACCES`, `EISDIR`
 *   when `path` is a directory, …), after the temporary file is removed.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  filePath('path', path)
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw new OptionError('data', `must be a Uint8Array or a string, got ${describe(data)}`)
  const dir = dirname(path)
  // The pid in the name lets a later save tell a killed writer's leftover from a live one's.
  const temp = join(dir, `.${basename(path)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`)
  // 'wx': never reuse (or follow a link at) an existing path.
  const handle = await open(temp, 'wx')
  try {
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (error) {
    await unlink(temp).catch(() => undefined)
    throw error
  }
  await syncDir(dir)
  await removeStaleTemps(dir, basename(path))
}

/**
 * A process killed mid-write cannot remove its temporary file: after a successful
 * write, the temporaries of the same target left by processes that no longer run
 * are removed (liveness from /proc where there is one; elsewhere older than a day).
 */
async function removeStaleTemps(dir: string, name: string): Promise<void> {
  const prefix = `.${name}.`
  const procFs = existsSync('/proc/self')
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch {
    return
  }
  for (const file of entries) {
    if (!file.startsWith(prefix) || !file.endsWith('.tmp')) continue
    const pid = Number(file.slice(prefix.length).split('-')[0])
    if (!Number.isInteger(pid) || pid === process.pid) continue
    const full = join(dir, file)
    const stale = procFs ? !existsSync(`/proc/${pid}`) : await stat(full).then((s) => Date.now() - s.mtimeMs > 86_400_000, () => false)
    if (stale) await unlink(full).catch(() => undefined)
  }
}

/** Flushes the folder's entry of the rename (best effort: some systems cannot open a folder for this). */
async function syncDir(dir: string): Promise<void> {
  let handle
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch {
    // The data is already on disk; only the rename's durability is not guaranteed.
  } finally {
    await handle?.close().catch(() => undefined)
  }
}
