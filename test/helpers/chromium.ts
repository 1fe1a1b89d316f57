/**
 * Test helper: headless Chromium (Debian's `/usr/bin/chromium`) on a local HTML file.
 *
 * - {@link dumpDom}: `--dump-dom`, the DOM after the page loaded.
 * - {@link screenshot}: `--screenshot=FILE --window-size=W,H`.
 * - {@link inspectPage}: the DevTools protocol over `--remote-debugging-pipe` (file
 *   descriptors 3 and 4, NUL-separated JSON; no WebSocket, no port), collecting what the
 *   DevTools console would show as errors: `console.error` calls, uncaught exceptions,
 *   log entries of level error (failed loads, Content-Security-Policy violations), and
 *   every request to something other than `file:` or `data:`. `--enable-logging=stderr`
 *   alone does not do: it prints console messages without their level and leaves
 *   failed resource loads out.
 */

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { pathToFileURL } from 'node:url'

export const CHROMIUM = '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)

const BASE = ['--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--mute-audio']

async function withProfile<T>(fn: (profile: string) => Promise<T>): Promise<T> {
  const profile = await mkdtemp(join(tmpdir(), 'ferronet-chromium-'))
  try {
    return await fn(profile)
  } finally {
    await rm(profile, { recursive: true, force: true })
  }
}

/** Runs Chromium to completion; rejects on a non-zero exit or after `timeoutMs`. */
function run(args: string[], timeoutMs = 90_000): Promise<{ stdout: string; stderr: string }> {
  return withProfile((profile) => new Promise((resolve, reject) => {
    const child = spawn(CHROMIUM, [...BASE, `--user-data-dir=${profile}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve({ stdout, stderr })
      else reject(new Error(`chromium ${args.join(' ')} exited with ${code ?? signal}: ${stderr.slice(-2000)}`))
    })
  }))
}

/** The page's DOM after load, serialised (`--dump-dom`). */
export async function dumpDom(file: string): Promise<string> {
  return (await run(['--dump-dom', pathToFileURL(file).href])).stdout
}

/** A PNG of the page's first `width × height` CSS pixels (`--screenshot`). */
export async function screenshot(file: string, png: string, width = 1280, height = 3000): Promise<void> {
  await run([`--screenshot=${png}`, `--window-size=${width},${height}`, pathToFileURL(file).href])
}

/** What the page did, seen through the DevTools protocol. */
export interface PageReport {
  /** console.error / console.assert messages, uncaught exceptions, error-level log entries (failed loads, CSP violations). */
  errors: string[]
  /** URLs requested that are neither `file:` nor `data:`. */
  externalRequests: string[]
  /** `result` of evaluating `expression` in the page after load. */
  result: unknown
}

interface Message {
  id?: number
  method?: string
  params?: Record<string, any>
  result?: Record<string, any>
  error?: { message: string }
  sessionId?: string
}

/** A minimal DevTools-protocol client over Chromium's debugging pipe. */
class Pipe {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (r: Record<string, any>) => void; reject: (e: Error) => void }>()
  private readonly listeners: ((m: Message) => void)[] = []
  private buffer = ''

  constructor(private readonly out: Writable, input: Readable) {
    input.setEncoding('utf8')
    input.on('data', (chunk: string) => {
      this.buffer += chunk
      let end: number
      while ((end = this.buffer.indexOf('\0')) >= 0) {
        const message = JSON.parse(this.buffer.slice(0, end)) as Message
        this.buffer = this.buffer.slice(end + 1)
        if (message.id !== undefined) {
          const p = this.pending.get(message.id)
          this.pending.delete(message.id)
          if (message.error) p?.reject(new Error(`CDP: ${message.error.message}`))
          else p?.resolve(message.result ?? {})
        } else {
          for (const l of this.listeners) l(message)
        }
      }
    })
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, any>> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.out.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0')
    })
  }

  on(listener: (m: Message) => void): void {
    this.listeners.push(listener)
  }

  failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error)
    this.pending.clear()
  }
}

/**
 * Loads `file`, waits for its load event, then evaluates `expression` (its value is
 * returned as `result`) and reports the page's errors and external requests.
 */
export async function inspectPage(file: string, expression = 'null', timeoutMs = 60_000): Promise<PageReport> {
  return withProfile(async (profile) => {
    const child = spawn(CHROMIUM, [...BASE, `--user-data-dir=${profile}`, '--remote-debugging-pipe', '--window-size=1280,3000', 'about:blank'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)))
    const pipe = new Pipe(child.stdio[3] as Writable, child.stdio[4] as Readable)
    child.on('exit', (code) => pipe.failAll(new Error(`chromium exited (${code}) before the page was inspected: ${stderr}`)))
    const errors: string[] = []
    const externalRequests: string[] = []
    let loaded: () => void = () => {}
    const load = new Promise<void>((resolve) => (loaded = resolve))
    pipe.on((m) => {
      const p = m.params ?? {}
      switch (m.method) {
        case 'Runtime.consoleAPICalled':
          if (p.type === 'error' || p.type === 'assert') errors.push(`console.${p.type}: ${(p.args ?? []).map((a: any) => a.value ?? a.description ?? '').join(' ')}`)
          break
        case 'Runtime.exceptionThrown':
          errors.push(`exception: ${p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text}`)
          break
        case 'Log.entryAdded':
          if (p.entry?.level === 'error') errors.push(`${p.entry.source}: ${p.entry.text}${p.entry.url ? ` (${p.entry.url})` : ''}`)
          break
        case 'Network.requestWillBeSent': {
          const url = String(p.request?.url ?? '')
          if (!url.startsWith('file:') && !url.startsWith('data:')) externalRequests.push(url)
          break
        }
        case 'Page.loadEventFired':
          loaded()
          break
      }
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    try {
      const { targetInfos } = await pipe.send('Target.getTargets')
      const page = (targetInfos as { type: string; targetId: string }[]).find((t) => t.type === 'page')
      if (!page) throw new Error('chromium opened no page')
      const { sessionId } = await pipe.send('Target.attachToTarget', { targetId: page.targetId, flatten: true })
      for (const domain of ['Runtime', 'Log', 'Network', 'Page']) await pipe.send(`${domain}.enable`, {}, sessionId)
      await pipe.send('Page.navigate', { url: pathToFileURL(file).href }, sessionId)
      await load
      const evaluated = await pipe.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, sessionId)
      if (evaluated.exceptionDetails) throw new Error(`evaluating ${expression}: ${evaluated.exceptionDetails.exception?.description ?? evaluated.exceptionDetails.text}`)
      // One more round trip, so that events sent before it have arrived.
      await pipe.send('Runtime.evaluate', { expression: '0' }, sessionId)
      await pipe.send('Browser.close').catch(() => undefined)
      return { errors, externalRequests, result: evaluated.result?.value }
    } finally {
      clearTimeout(timer)
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 5000).unref()
        await exited
      }
    }
  })
}
