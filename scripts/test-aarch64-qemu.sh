#!/usr/bin/env bash
# Proves the published aarch64 Linux (glibc) package works end to end: installs the
# staged root tarball + the linux-arm64-gnu platform tarball into an empty project and
# trains a small MLP with it under qemu user-mode emulation, using Debian's own arm64
# Node (a real aarch64 `node` binary, unlike scripts/test-aarch64.sh, which runs only the
# Rust core's tests cross-compiled for aarch64). Prints the losses, the test accuracy and
# the GEMM kernels the native binding selected (expected: a NEON kernel).
#
# Needs: Debian/Ubuntu with apt (run as root), cargo-zigbuild (only if the arm64 .node
# has to be built). Not part of CI. Idempotent: every step is skipped when already done.
#
# Usage: scripts/test-aarch64-qemu.sh
#   SYSROOT=/work/arm64-sysroot   where Debian's arm64 node and its libraries are unpacked
#   CONSUMER=/tmp/arm64-consumer  the throwaway project the tarballs are installed into
#   SAMPLES=2000 EPOCHS=2         size of the training run (it is slow under emulation)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
SYSROOT="${SYSROOT:-/work/arm64-sysroot}"
CONSUMER="${CONSUMER:-/tmp/arm64-consumer}"
SAMPLES="${SAMPLES:-2000}"
EPOCHS="${EPOCHS:-2}"
debs="$SYSROOT.debs"
log() { echo "test-aarch64-qemu: $*" >&2; }

# 1. qemu-user and Debian's arm64 Node, unpacked into a sysroot (no arm64 packages are
#    installed on the host: dpkg -x only).
command -v qemu-aarch64 >/dev/null || apt-get install -y -qq qemu-user
if [ ! -x "$SYSROOT/usr/bin/node" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  # nodejs + libnode108 and their runtime Depends (apt-cache depends --recurse), plus the
  # arch-all JS modules Debian's node loads from /usr/share/nodejs (cjs-module-lexer is
  # used when ESM imports CommonJS, e.g. the package's native/binding.cjs).
  pkgs=(nodejs:arm64 libnode108:arm64 libc6:arm64 libgcc-s1:arm64 gcc-12-base:arm64
        libstdc++6:arm64 libuv1:arm64 libssl3:arm64 libicu72:arm64 zlib1g:arm64
        libbrotli1:arm64 libc-ares2:arm64 libnghttp2-14:arm64
        node-acorn node-cjs-module-lexer node-undici node-busboy node-xtend)
  mkdir -p "$debs"
  chown _apt "$debs" 2>/dev/null || true  # else apt warns it downloads unsandboxed
  (cd "$debs" && apt-get download "${pkgs[@]}")
  mkdir -p "$SYSROOT"
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$SYSROOT"; done
fi
node_arm64=(qemu-aarch64 -L "$SYSROOT" "$SYSROOT/usr/bin/node")
log "node under qemu: $("${node_arm64[@]}" --version)"
"${node_arm64[@]}" -p 'process.arch + " " + process.platform' >&2

# 2. The arm64 addon (glibc 2.17 floor, cross-built with cargo-zigbuild) and the tarballs.
cd "$repo"
bin="npm/linux-arm64-gnu/ferronet.linux-arm64-gnu.node"
[ -f "$bin" ] || node scripts/build-all.mjs --target aarch64-unknown-linux-gnu
[ -f dist/index.js ] || npm run build:ts
staged="$(node scripts/stage-packages.mjs --allow-missing --json)"
root_tgz="$(node -e 'const s = JSON.parse(process.argv[1]); console.log(s.root.tarball ?? s.root)' "$staged")"
arm_tgz="$(node -e '
  const s = JSON.parse(process.argv[1])
  const list = Array.isArray(s.platforms) ? s.platforms : Object.values(s.platforms)
  const p = list.find((p) => JSON.stringify(p).includes("linux-arm64-gnu"))
  if (!p) { console.error("no linux-arm64-gnu tarball staged"); process.exit(1) }
  console.log(typeof p === "string" ? p : p.tarball)' "$staged")"
case "$root_tgz" in /*) ;; *) root_tgz="$repo/$root_tgz" ;; esac
case "$arm_tgz" in /*) ;; *) arm_tgz="$repo/$arm_tgz" ;; esac
log "root tarball:  $root_tgz"
log "arm64 tarball: $arm_tgz"

# 3. An empty consumer project; the host's (x86) npm only unpacks the tarballs.
rm -rf "$CONSUMER"
mkdir -p "$CONSUMER"
cd "$CONSUMER"
echo '{ "name": "arm64-consumer", "private": true, "type": "module" }' > package.json
# --cpu/--os/--libc select the arm64 optional packages, but npm still checks a tarball named
# on the command line against the host (EBADPLATFORM), hence --force. --omit=optional skips
# the root package's optional feature packages (sharp, fastify, vega, ...): not needed here.
npm install --offline --no-audit --no-fund --omit=optional --cpu=arm64 --os=linux --libc=glibc --force \
  "$root_tgz" "$arm_tgz" >&2
ls node_modules/@ferronet* node_modules/ferronet* -d >&2 2>/dev/null || true

cat > train.mjs <<'EOF'
import { createRequire } from 'node:module'
import { Net, Trainer, bench, mnist } from 'ferronet'

const samples = Number(process.env.SAMPLES ?? 2000)
const epochs = Number(process.env.EPOCHS ?? 2)
console.log(`node ${process.version} ${process.platform}-${process.arch}`)
// The native binding itself (the package's native/binding.cjs picks the platform package;
// it is not in the package's exports map, so it is required by path).
const require = createRequire(import.meta.url)
const binding = require('./node_modules/ferronet/native/binding.cjs')
console.log('binding gemmSelectedKernel():', binding.gemmSelectedKernel())
console.log('binding gemmKernels():', binding.gemmKernels().join(', '))
console.log('bench.gemmSelectedKernel():', bench.gemmSelectedKernel())
console.log('bench.gemmKernels():', bench.gemmKernels().join(', '))

const digits = await mnist.loadDigits()
const [train, test] = digits.subset(0, samples).split(0.8, { seed: 1 })
const net = Net.sequential(784, [Net.dense(32), Net.relu(), Net.dense(10)], { seed: 0 })
const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64, threads: 1 })
const t0 = Date.now()
const { epochs: results } = await trainer.fit(train, { epochs })
for (const e of results) {
  console.log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)} accuracy ${e.accuracy?.toFixed(4)} ` +
    `(${e.seconds.toFixed(1)} s, ${Math.round(e.samplesPerSecond)} samples/s)`)
}
const { loss, accuracy } = await trainer.evaluate(test)
console.log(`test (${test.size} samples): loss ${loss.toFixed(4)} accuracy ${accuracy.toFixed(4)}`)
console.log(`train+eval ${((Date.now() - t0) / 1000).toFixed(1)} s`)
if (!(results.at(-1).loss < results[0].loss || results.length === 1)) throw new Error('loss did not fall')
if (!/neon/i.test(bench.gemmSelectedKernel())) throw new Error('the selected GEMM kernel is not a NEON one')
EOF

# 4. Train under qemu with the arm64 node.
SECONDS=0
SAMPLES="$SAMPLES" EPOCHS="$EPOCHS" "${node_arm64[@]}" train.mjs
log "done in ${SECONDS} s under qemu"
