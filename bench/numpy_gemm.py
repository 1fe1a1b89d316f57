#!/usr/bin/python3
"""Benchmark child for bench/run.mjs: single-precision GEMM GFLOP/s of NumPy's BLAS.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        /usr/bin/python3 bench/numpy_gemm.py --shapes '[{"m":64,"k":784,"n":500,"transA":false,"transB":true}]'

One process per thread count: OpenBLAS reads its thread count from the environment when
it loads, so bench/run.mjs starts this script once per count with OPENBLAS_NUM_THREADS
and OMP_NUM_THREADS set, and with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed from this
child's environment only (they pin an older kernel on this machine; see bench/README.md).

Per shape C[m,n] = A[m,k] @ B[k,n] in float32; transA means A is stored [k,m] and used
as a.T, transB means B is stored [n,k] and used as b.T (NumPy hands both to sgemm as
transposes, without copying). Each repetition calls matmul `iters` times into a
preallocated `out` (iters calibrated so one repetition lasts >= --min-seconds);
GFLOP/s = 2·m·k·n·iters / best repetition. A sample of C is checked against float64
dot products computed without BLAS. The kernel and thread count are taken from
threadpoolctl (apt-get install python3-threadpoolctl) when installed.
"""

import argparse
import json
import os
import resource
import sys
import time
import traceback


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def shape_key(s):
    return f"{s['m']}x{s['k']}x{s['n']}" + (" Aᵀ" if s.get("transA") else "") + (" Bᵀ" if s.get("transB") else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True, help="JSON list of {m,k,n,transA,transB,role}")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=0.05)
    args = ap.parse_args()
    shapes = json.loads(args.shapes)

    import numpy as np

    threads_env = os.environ.get("OPENBLAS_NUM_THREADS")
    info = {"kind": "meta", "child": "numpy-gemm", "numpy": np.__version__,
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
            "threadpoolctl": None}
    rng = np.random.default_rng(0)
    a0 = rng.random((64, 64), dtype=np.float32)
    a0 @ a0  # load and initialise BLAS
    try:
        import threadpoolctl

        pools = threadpoolctl.threadpool_info()
        info["threadpoolctl"] = [
            {k: v for k, v in i.items() if k in ("internal_api", "version", "architecture", "threading_layer", "num_threads", "filepath")}
            for i in pools
        ]
        blas = [i for i in pools if i.get("user_api") == "blas"]
        if blas:
            info["blas"] = f"{blas[0].get('internal_api')} {blas[0].get('version')} ({blas[0].get('threading_layer')}), kernel {blas[0].get('architecture')}"
            info["blasThreads"] = blas[0].get("num_threads")
    except ImportError:
        info["threadpoolctlMissing"] = "python3-threadpoolctl is not installed (apt-get install python3-threadpoolctl); kernel unknown"
    emit(info)
    log(f"numpy {np.__version__}: {info.get('blas', 'BLAS unknown')}, threads {info.get('blasThreads', threads_env)}")

    threads = info.get("blasThreads") or (int(threads_env) if threads_env else None)
    for s in shapes:
        m, k, n = s["m"], s["k"], s["n"]
        a = rng.standard_normal((k, m) if s.get("transA") else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if s.get("transB") else (k, n), dtype=np.float32)
        A = a.T if s.get("transA") else a
        B = b.T if s.get("transB") else b
        out = np.empty((m, n), dtype=np.float32)
        np.matmul(A, B, out=out)  # warm-up
        # Correctness: a sample of entries against float64 dot products (no BLAS).
        idx = [(i * 7919 % m, i * 104729 % n) for i in range(32)]
        err = max(abs(float(out[i, j]) - float(np.sum(A[i, :].astype(np.float64) * B[:, j].astype(np.float64)))) for i, j in idx)
        scale = max(1.0, float(np.sqrt(k)))
        # Calibrate: enough calls per repetition to last min_seconds.
        iters = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(iters):
                np.matmul(A, B, out=out)
            dt = time.perf_counter() - t0
            if dt >= args.min_seconds or iters >= 1 << 20:
                break
            iters *= max(2, min(16, int(args.min_seconds / max(dt, 1e-9)) + 1))
        secs = []
        for _ in range(args.repetitions):
            t0 = time.perf_counter()
            for _ in range(iters):
                np.matmul(A, B, out=out)
            secs.append((time.perf_counter() - t0) / iters)
        best = min(secs)
        gflops = 2.0 * m * k * n / best / 1e9
        emit({"kind": "gemm", "implementation": "openblas", "shape": shape_key(s), "role": s.get("role"),
              "m": m, "k": k, "n": n, "transA": bool(s.get("transA")), "transB": bool(s.get("transB")),
              "threads": threads, "kernel": (info.get("blas") or "unknown"), "repetitions": args.repetitions,
              "callsPerRepetition": iters, "gflops": gflops, "bestSeconds": best,
              "medianSeconds": sorted(secs)[len(secs) // 2], "maxAbsError": err, "errorScale": scale,
              "correct": err <= 1e-3 * scale})
        log(f"numpy {shape_key(s)}: {gflops:.2f} GFLOP/s (x{iters} calls per rep), max err {err:.2e}")
    emit({"kind": "rss", "child": "numpy-gemm", "maxRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        emit({"kind": "error", "child": "numpy-gemm", "message": "".join(traceback.format_exception(type(e), e, e.__traceback__))})
        sys.exit(1)
