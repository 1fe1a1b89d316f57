#!/usr/bin/python3
"""Benchmark child for bench/run.mjs: PyTorch training and inference of the seed network.

Run with /usr/bin/python3 (Debian python3-torch). Modes:

    /usr/bin/python3 bench/pytorch_bench.py --mode train --threads 1 [--warmup 1] [--epochs 3] [--limit N]
    /usr/bin/python3 bench/pytorch_bench.py --mode infer --threads 1 [--runs 5] [--batch 1000] [--limit N]
    /usr/bin/python3 bench/pytorch_bench.py --mode baseline

Training is the loop of bench/pytorch_mlp.py (same model, init, loss, Adam, batch 64,
randperm shuffle each epoch, last partial batch kept, data held in memory as float32
tensors = pixels/255); each epoch is timed with time.perf_counter() around the whole
batch loop. Inference runs model(x[i:i+batch]) under torch.no_grad() in eval mode.

Threads: torch.set_num_threads(N). The orchestrator also sets OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS to N in this process's environment, so OpenBLAS (the OpenMP
build on Debian) cannot use more. The BLAS library, its kernel ("architecture") and
its thread count are reported from threadpoolctl when it is installed
(apt-get install python3-threadpoolctl), else from /proc/self/maps.

Output: JSON lines on stdout ({"kind": "meta"|"train"|"infer"|"baseline"|"error", ...}),
progress on stderr. ru_maxrss (KiB on Linux) is the process's peak RSS.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
INPUT, HIDDEN, CLASSES, BATCH, LR = 784, 500, 10, 64, 1e-3


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def max_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def blas_report():
    """What BLAS this process runs and with how many threads (after a BLAS call)."""
    import torch
    from pytorch_mlp import blas_info  # noqa: E402  (imports torch too)

    torch.mm(torch.ones(256, 256), torch.ones(256, 256))  # make BLAS pick its thread count
    reported, mapped = blas_info()
    out = {"blas": reported, "blasLibs": mapped, "threadpoolctl": None}
    try:
        import threadpoolctl

        out["threadpoolctl"] = [
            {k: v for k, v in i.items() if k in ("internal_api", "version", "architecture", "threading_layer", "num_threads", "filepath")}
            for i in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        out["threadpoolctlMissing"] = "python3-threadpoolctl is not installed (apt-get install python3-threadpoolctl)"
    return out


def load_split(data_dir, split, limit=None):
    import torch
    from pytorch_mlp import read_idx, u8_tensor

    prefix = "train" if split == "train" else "t10k"
    idims, idata = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    ldims, ldata = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = u8_tensor(idims, idata).reshape(idims[0], INPUT).to(torch.float32).div_(255.0)
    y = u8_tensor(ldims, ldata).to(torch.int64)
    del idata, ldata
    if limit:
        x, y = x[:limit].contiguous(), y[:limit].contiguous()
    return x, y


def build_model(seed=0):
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(INPUT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["train", "infer", "baseline"], required=True)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data", default=FASHION_DIR)
    args = ap.parse_args()

    import torch
    import torch.nn as nn

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    if args.mode == "baseline":
        build_model()
        emit({"kind": "baseline", "what": "python3 + torch", "framework": "pytorch",
              "torch": torch.__version__, "maxRssKiB": max_rss_kib(), "rssKiB": rss_kib()})
        return

    meta = {"kind": "meta", "child": f"pytorch-{args.mode}", "torch": torch.__version__,
            "threads": threads, "threadsRequested": args.threads,
            "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}}
    meta.update(blas_report())
    emit(meta)
    log(f"torch {torch.__version__}, threads {threads}, BLAS {meta['blas']}")

    if args.mode == "infer":
        x, _ = load_split(args.data, "test", args.limit)
        n = x.shape[0]
        model = build_model().eval()

        def one_pass():
            s = 0.0
            with torch.no_grad():
                for i in range(0, n, args.batch):
                    s += float(model(x[i:i + args.batch])[0, 0])
            return s

        one_pass()  # warm-up
        secs = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            one_pass()
            secs.append(time.perf_counter() - t0)
        med = statistics.median(secs)
        log(f"pytorch predict {threads}t: median {n / med:.0f} samples/s over {args.runs} runs")
        emit({"kind": "infer", "framework": "pytorch", "config": f"pytorch {threads}t", "threads": threads,
              "samples": n, "batch": args.batch, "runs": args.runs, "medianSeconds": med,
              "samplesPerSecond": n / med, "runSeconds": secs,
              "input": "float32 tensor (pixels/255), model(x[i:i+batch]) under torch.no_grad(), eval mode",
              "blasThreadsAfter": blas_report().get("threadpoolctl"),
              "maxRssKiB": max_rss_kib()})
        return

    # ---- train
    from pytorch_mlp import train_epoch

    t0 = time.perf_counter()
    xtr, ytr = load_split(args.data, "train", args.limit)
    # Load the test split too, as a real training script does. Measured here: with only
    # the train split loaded, glibc's heap ends up laid out so that PyTorch's per-batch
    # allocations run ~1.5x slower (1.5 s vs 1.05 s per epoch, 2 threads); loading both
    # gives PyTorch its best time, which is the one to compare against.
    xte, yte = load_split(args.data, "test", args.limit)
    rss_after_load = rss_kib()
    log(f"data: {tuple(xtr.shape)} loaded in {time.perf_counter() - t0:.1f}s")
    model = build_model()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    n = xtr.shape[0]
    runs = []
    for epoch in range(args.warmup + args.epochs):
        t0 = time.perf_counter()
        loss_mean = train_epoch(model, opt, loss_fn, xtr, ytr, gen, BATCH)
        dt = time.perf_counter() - t0
        warm = epoch < args.warmup
        runs.append({"seconds": dt, "loss": loss_mean, "warmup": warm})
        log(f"  epoch {epoch + 1}{' (warm-up)' if warm else ''}: {dt:.3f} s, loss {loss_mean:.4f}")
    timed = [r["seconds"] for r in runs if not r["warmup"]]
    params = sum(p.numel() for p in model.parameters())
    emit({"kind": "train", "framework": "pytorch", "config": f"pytorch {threads}t",
          "threadsRequested": args.threads, "threads": threads, "samples": n, "batchSize": BATCH,
          "warmupEpochs": args.warmup, "epochSeconds": timed,
          "medianEpochSeconds": statistics.median(timed) if timed else None,
          "timing": "time.perf_counter() around each epoch's batch loop (randperm, gather, forward, backward, Adam step, loss.item())",
          "extrapolated": False,
          "lossPerEpoch": [r["loss"] for r in runs],
          "inputDType": "float32",
          "datasetBytes": sum(t.numel() * t.element_size() for t in (xtr, ytr, xte, yte)),
          "datasetNote": f"train inputs as a float32 tensor {list(xtr.shape)} + int64 labels",
          "paramCount": params, "stateBytes": params * 4 * 4,
          "stateNote": "parameters + gradients + Adam exp_avg + exp_avg_sq, f32",
          "blasThreadsAfter": blas_report().get("threadpoolctl"),
          "rssAfterLoadKiB": rss_after_load, "rssEndKiB": rss_kib(), "maxRssKiB": max_rss_kib()})


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, don't die silently
        emit({"kind": "error", "child": "pytorch", "message": "".join(traceback.format_exception(type(e), e, e.__traceback__))})
        sys.exit(1)
