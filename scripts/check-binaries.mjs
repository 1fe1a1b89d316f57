#!/usr/bin/env node
/**
 * Checks the built addon of every `napi.targets` entry, i.e. each
 * `npm/<platform-arch-abi>/<binaryName>.<platform-arch-abi>.node` (what scripts/build-all.mjs leaves),
 * and prints one line per target:
 *
 *   - the file format and architecture match the target (`file`, `readelf -h` / `objdump -f`),
 *   - Linux gnu: the highest GLIBC_x.y symbol version it needs is <= 2.17 (`objdump -T`),
 *   - Linux musl: no glibc (`libc.so.6`) among its DT_NEEDED (`readelf -d`) and no GLIBC_ versions,
 *   - macOS: the minimum macOS it declares (LC_BUILD_VERSION minos) is <= 10.15 (x64) / 11.0 (arm64),
 *     and arm64 ones carry a code signature (LC_CODE_SIGNATURE),
 *   - every target: `napi_register_module_v1` is exported (defined, not just referenced).
 *
 * GNU objdump only reads the host's formats; for the others it uses llvm-objdump (same output).
 * Targets that were not built are listed as such (with the reason build-all.mjs recorded in
 * target/build-all/status.json, if any) and do not fail the run, unless --require-all is given.
 * Exits 1 if a built binary fails a check.
 *
 * Usage: node scripts/check-binaries.mjs [--target <triple>]... [--require-all] [--dir <dir>]
 *   --dir  look for <binaryName>.<platform-arch-abi>.node in <dir> instead of npm/<platform-arch-abi>/
 *          (e.g. --dir native for the host's own build, or a folder of CI artifacts)
 */

import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { delimiter, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { readNapiConfig } from '@napi-rs/cli'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { values: args } = parseArgs({
  options: {
    target: { type: 'string', multiple: true },
    'require-all': { type: 'boolean', default: false },
    dir: { type: 'string' },
  },
})
const GLIBC_FLOOR = [2, 17]
/** Oldest macOS the addon must load on (Node 20 itself: 10.15 on x64, 11.0 on arm64). */
const MACOS_FLOOR = { x64: '10.15', arm64: '11.0' }

const napi = await readNapiConfig(join(repo, 'package.json'))
const targets = napi.targets.filter((t) => !args.target || args.target.includes(t.triple))
let status = {}
try {
  status = JSON.parse(readFileSync(join(repo, 'target', 'build-all', 'status.json'), 'utf8')).targets ?? {}
} catch {}

/** Runs a tool; returns its stdout or null if it is missing / fails. */
function run(cmd, cmdArgs) {
  const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
  return r.status === 0 ? r.stdout : null
}
/** llvm-objdump and its versioned names (llvm-objdump-18, ...) found on PATH, newest first. */
const llvmObjdumps = (() => {
  const names = new Set(['llvm-objdump'])
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      for (const f of readdirSync(dir)) if (/^llvm-objdump-\d+$/.test(f)) names.add(f)
    } catch {}
  }
  return [...names].sort((a, b) => (Number(b.split('-')[2]) || 999) - (Number(a.split('-')[2]) || 999))
})()

/** GNU objdump if it reads this file, else llvm-objdump. */
function objdump(cmdArgs, file) {
  for (const tool of ['objdump', ...llvmObjdumps]) {
    const out = run(tool, [...cmdArgs, file])
    if (out !== null) return { tool, out }
  }
  return { tool: null, out: null }
}

const expectedElfMachine = { x64: 'Advanced Micro Devices X86-64', arm64: 'AArch64' }
// `file -b` output: the format, and the architecture (its place in the text varies between versions).
const expectedFormat = {
  darwin: /Mach-O 64-bit .*(dynamically linked shared library|bundle)/,
  win32: /PE32\+ executable.*\(DLL\)/,
}
const expectedFileArch = { x64: /\bx86[-_]64\b/i, arm64: /\b(arm64|aarch64)\b/i }
const cmpVersion = (a, b) => a[0] - b[0] || a[1] - b[1]

function check(t, file) {
  const problems = []
  const facts = []
  const fileOut = run('file', ['-b', file])?.trim() ?? ''
  if (t.platform === 'linux') {
    const header = run('readelf', ['-h', file]) ?? ''
    const machine = header.match(/Machine:\s+(.+)/)?.[1]?.trim()
    const type = header.match(/Type:\s+(\S+)/)?.[1]
    if (machine !== expectedElfMachine[t.arch]) problems.push(`ELF machine is ${machine ?? '?'} (readelf -h), expected ${expectedElfMachine[t.arch]}`)
    else facts.push(`ELF ${type} ${machine}`)
    if (type !== 'DYN') problems.push(`ELF type ${type}, expected DYN (shared object)`)

    const { tool, out: dyn } = objdump(['-T'], file)
    if (dyn === null) problems.push('objdump -T failed')
    const versions = [...new Set((dyn ?? '').match(/GLIBC_\d+\.\d+/g) ?? [])].map((v) => v.slice(6).split('.').map(Number)).sort(cmpVersion)
    const highest = versions.at(-1)
    const needed = [...(run('readelf', ['-d', file]) ?? '').matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map((m) => m[1])
    if (t.abi === 'gnu') {
      if (!highest) problems.push(`no GLIBC_ symbol versions found (${tool} -T)`)
      else if (cmpVersion(highest, GLIBC_FLOOR) > 0) problems.push(`needs GLIBC_${highest.join('.')} > ${GLIBC_FLOOR.join('.')} (${tool} -T)`)
      else facts.push(`max GLIBC_${highest.join('.')} <= ${GLIBC_FLOOR.join('.')} (${tool} -T)`)
    } else if (t.abi === 'musl') {
      if (needed.includes('libc.so.6')) problems.push('depends on libc.so.6 (glibc) (readelf -d)')
      if (highest) problems.push(`has GLIBC_${highest.join('.')} symbol versions`)
      if (!needed.includes('libc.so.6') && !highest) facts.push(`no glibc (NEEDED: ${needed.join(' ') || 'none'})`)
    }
    const register = (dyn ?? '').split('\n').find((l) => /\snapi_register_module_v1$/.test(l))
    if (!register) problems.push('napi_register_module_v1 not in the dynamic symbol table')
    else if (/\*UND\*/.test(register)) problems.push('napi_register_module_v1 is undefined (imported, not exported)')
    else facts.push('exports napi_register_module_v1')
  } else if (t.platform === 'darwin' || t.platform === 'win32') {
    if (!expectedFormat[t.platform].test(fileOut)) problems.push(`file says "${fileOut}", expected ${expectedFormat[t.platform]}`)
    if (!expectedFileArch[t.arch].test(fileOut)) problems.push(`file says "${fileOut}", expected architecture ${t.arch}`)
    const { tool, out: head } = objdump(['-f'], file)
    const archLine = head?.match(/architecture: (\S+?),?\s/)?.[1] ?? head?.match(/file format (\S+)/)?.[1]
    facts.push(`${fileOut.split(',')[0]}${archLine ? ` (${tool} -f: ${archLine})` : ''}`)
    let exported = false
    if (t.platform === 'darwin') {
      // The minimum macOS (LC_BUILD_VERSION minos, or LC_VERSION_MIN_MACOSX version) must not exceed the floor.
      const headers = objdump(['--macho', '--private-headers'], file).out ?? ''
      const minos = headers.match(/LC_BUILD_VERSION[\s\S]*?minos (\d+\.\d+)/)?.[1] ?? headers.match(/LC_VERSION_MIN_MACOSX[\s\S]*?version (\d+\.\d+)/)?.[1]
      const floor = MACOS_FLOOR[t.arch]
      if (!minos) problems.push('no minimum macOS version found (objdump --macho --private-headers)')
      else if (cmpVersion(minos.split('.').map(Number), floor.split('.').map(Number)) > 0) problems.push(`needs macOS ${minos} > ${floor} (LC_BUILD_VERSION minos; set MACOSX_DEPLOYMENT_TARGET)`)
      else facts.push(`min macOS ${minos} <= ${floor}`)
      // arm64 macOS kills a process that maps unsigned code: the linker's ad-hoc signature must be there.
      if (t.arch === 'arm64') {
        if (/LC_CODE_SIGNATURE/.test(headers)) facts.push('ad-hoc signed')
        else problems.push('no LC_CODE_SIGNATURE (arm64 macOS refuses unsigned code)')
      }
      // Mach-O: the export trie lists _napi_register_module_v1 if it is exported.
      const exportsOut = objdump(['--macho', '--exports-trie'], file).out ?? ''
      const syms = objdump(['-t'], file).out ?? ''
      exported = /\b_napi_register_module_v1\b/.test(exportsOut) || syms.split('\n').some((l) => /\sg\s.*\s_napi_register_module_v1$/.test(l) && !/\*UND\*/.test(l))
    } else {
      // PE: the DLL's export table.
      const pe = objdump(['-p'], file).out ?? ''
      const exportsSection = pe.split(/Export Table:|The Export Tables/)[1] ?? ''
      exported = /\bnapi_register_module_v1\b/.test(exportsSection)
      // Only Windows' own DLLs: nothing of Node is linked (N-API is found in the host process at
      // load time), and no MinGW runtime DLL that a user's machine would not have.
      const dlls = [...pe.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1])
      const foreign = dlls.filter((d) => /^(node\.exe|libnode|libgcc|libstdc\+\+|libwinpthread|libunwind|libc\+\+)/i.test(d))
      if (dlls.length === 0) problems.push('no DLL imports found (objdump -p)')
      else if (foreign.length > 0) problems.push(`imports ${foreign.join(', ')}`)
      else facts.push(`imports only system DLLs (${dlls.length}: ${dlls.filter((d) => !/^api-ms-win/i.test(d)).join(' ')} + api-ms-win-*)`)
      if (status[t.triple]?.note) facts.push(status[t.triple].note)
    }
    if (exported) facts.push('exports napi_register_module_v1')
    else problems.push('napi_register_module_v1 is not exported')
  } else {
    problems.push(`no checks defined for platform ${t.platform}`)
  }
  return { problems, facts }
}

let failed = 0
let notBuilt = 0
const width = Math.max(...targets.map((t) => t.triple.length))
for (const t of targets) {
  const abi = t.platformArchABI
  const name = `${napi.binaryName}.${abi}.node`
  const file = args.dir ? resolve(args.dir, name) : join(repo, 'npm', abi, name)
  const label = t.triple.padEnd(width)
  if (!existsSync(file)) {
    notBuilt++
    const why = status[t.triple]?.reason ?? `no ${relative(repo, file)}`
    console.log(`${label}  NOT BUILT  ${why}`)
    continue
  }
  const { problems, facts } = check(t, file)
  if (problems.length > 0) {
    failed++
    console.log(`${label}  FAIL       ${relative(repo, file)}: ${problems.join('; ')}${facts.length ? ` [ok: ${facts.join(', ')}]` : ''}`)
  } else {
    console.log(`${label}  OK         ${relative(repo, file)}: ${facts.join(', ')}`)
  }
}
const ok = targets.length - failed - notBuilt
console.log(`check-binaries: ${ok} ok, ${failed} failed, ${notBuilt} not built (of ${targets.length} targets)`)
if (failed > 0 || (args['require-all'] && notBuilt > 0)) process.exit(1)
