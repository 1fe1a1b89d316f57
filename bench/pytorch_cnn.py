#!/usr/bin/python3
"""Benchmark child for bench/run.mjs: PyTorch training of the two CNNs (LeNet-5, "cnn").

Runs under Debian's /usr/bin/python3 (python3-torch 1.13, OpenBLAS) and under a
PyTorch 2.x venv (/work/venv-torch/bin/python, see bench/README.md). Modes:

    /usr/bin/python3 bench/pytorch_cnn.py --mode train --net lenet|cnn --threads 1 [--warmup 1] [--epochs 3] [--limit N]
    /usr/bin/python3 bench/pytorch_cnn.py --mode accuracy --net lenet|cnn --threads 2 [--epochs 10] [--seed 0] [--limit N]

Networks (Fashion-MNIST, inputs pixels/255 as float32 [N, 1, 28, 28]):
  lenet: Conv2d(1,6,5,padding=2), ReLU, MaxPool2d(2), Conv2d(6,16,5), ReLU, MaxPool2d(2),
         Flatten, Linear(400,120), ReLU, Linear(120,84), ReLU, Linear(84,10)
  cnn:   Conv2d(1,32,3), ReLU, Conv2d(32,64,3), ReLU, MaxPool2d(2), Dropout(0.25), Flatten,
         Linear(9216,128), ReLU, Dropout(0.5), Linear(128,10)
PyTorch's default init after torch.manual_seed(seed), default memory format (contiguous
NCHW: what a user writes; no channels_last), nn.CrossEntropyLoss, Adam(lr=1e-3), batch 64,
the training set reshuffled each epoch with torch.randperm (last partial batch kept): the
batch loop of bench/pytorch_mlp.py (train_epoch), timed with time.perf_counter() around
each whole epoch. train: one warm-up epoch, then the median of --epochs epochs.
accuracy: --epochs epochs from --seed, test accuracy after each (eval not timed in
epochSeconds), printed as one JSON line.

FLOPs: forward multiply-accumulates of every Conv2d / Linear, counted from the shapes
the modules see on one sample (forward hooks): Conv2d out_C*out_H*out_W*(in_C/groups)*kH*kW,
Linear in*out. Training FLOPs per sample = 3 * 2 * MACs (backward ~ 2x forward).

Threads: torch.set_num_threads(N); the orchestrator also sets OMP_NUM_THREADS,
MKL_NUM_THREADS and OPENBLAS_NUM_THREADS to N. The meta line records the torch version,
BLAS, MKL / oneDNN (mkldnn) / OpenMP availability, torch.__config__.parallel_info() and
the libraries mapped into the process.

Output: JSON lines on stdout ({"kind": "meta"|"cnn-train"|"cnn-accuracy"|"error", ...}),
progress on stderr.
"""

import argparse
import json
import os
import re
import resource
import statistics
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
BATCH, LR, CLASSES = 64, 1e-3, 10


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


def build_model(name, seed):
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, CLASSES),
        )
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25),
            nn.Flatten(),
            nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, CLASSES),
        )
    raise ValueError(f"unknown network {name!r}")


def count_macs(model):
    """Forward MACs per sample of every Conv2d / Linear, from the shapes seen on one sample."""
    import torch
    import torch.nn as nn

    layers = []

    def hook(mod, inp, out):
        per_sample_out = out.numel() // out.shape[0]
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            macs = per_sample_out * (mod.in_channels // mod.groups) * kh * kw
            layers.append({"type": "conv", "output": list(out.shape[1:]), "macs": macs})
        else:
            macs = mod.in_features * mod.out_features
            layers.append({"type": "dense", "output": list(out.shape[1:]), "macs": macs})

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    model.train(was_training)
    for h in handles:
        h.remove()
    return sum(l["macs"] for l in layers), layers


def torch_report():
    """Version, BLAS / MKL / oneDNN / OpenMP, thread pools, mapped libraries."""
    import torch

    cfg = torch.__config__.show()

    def cfg_field(name):
        m = re.search(rf"{name}=([^,\s]+)", cfg)
        return m.group(1) if m else None

    torch.mm(torch.ones(256, 256), torch.ones(256, 256))  # make BLAS start its pool
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                path = parts[-1] if len(parts) >= 6 else ""
                if re.search(r"(blas|blis|mkl|dnnl|mkldnn|gomp|iomp|omp)", os.path.basename(path), re.I):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    from pytorch_mlp import blas_info

    blas_flavour = blas_info()[0]
    backends = torch.backends
    out = {
        "torch": torch.__version__,
        "python": sys.executable,
        "pythonVersion": sys.version.split()[0],
        # PyPI wheels link MKL statically (nothing to see in /proc/self/maps; an OpenBLAS
        # mapped there may be NumPy's own); Debian's links libblas (OpenBLAS) dynamically.
        "blas": f"MKL (linked into libtorch), BLAS_INFO={cfg_field('BLAS_INFO')}" if cfg_field("BLAS_INFO") == "mkl" else blas_flavour,
        "blasInfo": cfg_field("BLAS_INFO"),
        "mklVersion": (re.search(r"Math Kernel Library Version ([^\n]+?)(?: for |\n|$)", cfg) or [None, None])[1],
        "onednnVersion": (re.search(r"(?:MKL-DNN|oneDNN) (v[0-9][^\s]*)", cfg) or [None, None])[1],
        "lapackInfo": cfg_field("LAPACK_INFO"),
        "useMkl": cfg_field("USE_MKL"),
        "useMkldnn": cfg_field("USE_MKLDNN"),
        "useOpenmp": cfg_field("USE_OPENMP"),
        "mklAvailable": bool(backends.mkl.is_available()),
        "mkldnnAvailable": bool(backends.mkldnn.is_available()),
        "mkldnnEnabled": bool(getattr(backends.mkldnn, "enabled", False)),
        "openmpAvailable": bool(backends.openmp.is_available()),
        "cpuCapability": None,
        "numThreads": torch.get_num_threads(),
        "numInteropThreads": torch.get_num_interop_threads(),
        "parallelInfo": torch.__config__.parallel_info().strip().splitlines(),
        "mappedLibs": sorted(libs),
        "memoryFormat": "torch.contiguous_format (NCHW, PyTorch's default; channels_last not used)",
        "threadpoolctl": None,
    }
    try:
        out["cpuCapability"] = backends.cpu.get_cpu_capability()  # torch >= 2.0
    except AttributeError:
        pass
    try:
        import threadpoolctl

        out["threadpoolctl"] = [
            {k: v for k, v in i.items() if k in ("internal_api", "version", "architecture", "threading_layer", "num_threads", "filepath")}
            for i in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        out["threadpoolctlMissing"] = "threadpoolctl is not importable in this Python"
    return out


def load_split(data_dir, split, limit=None):
    import torch
    from pytorch_mlp import read_idx, u8_tensor

    prefix = "train" if split == "train" else "t10k"
    idims, idata = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    ldims, ldata = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    assert tuple(idims[1:]) == (28, 28), idims
    x = u8_tensor(idims, idata).reshape(idims[0], 1, 28, 28).to(torch.float32).div_(255.0)
    y = u8_tensor(ldims, ldata).to(torch.int64)
    del idata, ldata
    if limit:
        x, y = x[:limit].contiguous(), y[:limit].contiguous()
    return x, y


def default_install():
    return "debian" if os.path.realpath(sys.executable).startswith("/usr/bin/") else "venv"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["train", "accuracy"], required=True)
    ap.add_argument("--net", choices=["lenet", "cnn"], required=True)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=None, help="train: timed epochs (default 3); accuracy: epochs (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training (and test) samples")
    ap.add_argument("--install", default=None, help="label of this PyTorch installation (default: debian for /usr/bin/python3, else venv)")
    ap.add_argument("--data", default=FASHION_DIR)
    args = ap.parse_args()
    epochs = args.epochs if args.epochs is not None else (3 if args.mode == "train" else 10)
    install = args.install or default_install()

    import torch
    import torch.nn as nn
    from pytorch_mlp import evaluate, train_epoch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    info = torch_report()
    meta = {"kind": "meta", "child": f"pytorch-cnn-{args.mode}", "install": install, "threadsRequested": args.threads, "threads": threads,
            "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}}
    meta.update(info)
    emit(meta)
    log(f"torch {info['torch']} ({install}, {sys.executable}), threads {threads}, BLAS {info['blasInfo']}, "
        f"MKL {info['mklAvailable']}, oneDNN {info['mkldnnAvailable']}, OpenMP {info['openmpAvailable']}")

    t0 = time.perf_counter()
    xtr, ytr = load_split(args.data, "train", args.limit)
    # The test split is loaded in both modes, as a real training script does (see the
    # heap-layout note in bench/pytorch_bench.py).
    xte, yte = load_split(args.data, "test", args.limit)
    rss_after_load = rss_kib()
    log(f"data: train {tuple(xtr.shape)}, test {tuple(xte.shape)}, loaded in {time.perf_counter() - t0:.1f}s")

    model = build_model(args.net, args.seed)
    macs, macs_by_layer = count_macs(model)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    n = xtr.shape[0]
    common = {"framework": "pytorch", "install": install, "torch": info["torch"], "net": args.net,
              "config": f"pytorch {info['torch']} ({install}) {args.net} {threads}t",
              "threadsRequested": args.threads, "threads": threads, "samples": n, "batchSize": BATCH, "lr": LR, "seed": args.seed,
              "forwardMacsPerSample": macs, "macsByLayer": macs_by_layer, "trainFlopsPerSample": 6 * macs, "paramCount": params,
              "mklAvailable": info["mklAvailable"], "mkldnnAvailable": info["mkldnnAvailable"], "memoryFormat": info["memoryFormat"]}

    if args.mode == "accuracy":
        acc, secs, eval_secs, losses = [], [], [], []
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            loss_mean = train_epoch(model, opt, loss_fn, xtr, ytr, gen, BATCH)
            dt = time.perf_counter() - t0
            t1 = time.perf_counter()
            a = evaluate(model, xte, yte)
            eval_secs.append(time.perf_counter() - t1)
            acc.append(a)
            secs.append(dt)
            losses.append(loss_mean)
            log(f"  epoch {epoch:2d}: train loss {loss_mean:.4f}, test accuracy {a:.4f}, {dt:.2f} s")
        emit({"kind": "cnn-accuracy", **common, "epochs": epochs, "testSamples": xte.shape[0],
              "accuracyPerEpoch": acc, "testAccuracy": acc[-1] if acc else None, "trainLossPerEpoch": losses,
              "epochSeconds": secs, "evalSeconds": eval_secs, "maxRssKiB": max_rss_kib()})
        return

    runs = []
    for epoch in range(args.warmup + epochs):
        t0 = time.perf_counter()
        loss_mean = train_epoch(model, opt, loss_fn, xtr, ytr, gen, BATCH)
        dt = time.perf_counter() - t0
        warm = epoch < args.warmup
        runs.append({"seconds": dt, "loss": loss_mean, "warmup": warm})
        log(f"  epoch {epoch + 1}{' (warm-up)' if warm else ''}: {dt:.3f} s, loss {loss_mean:.4f}")
    timed = [r["seconds"] for r in runs if not r["warmup"]]
    med = statistics.median(timed) if timed else None
    emit({"kind": "cnn-train", **common, "warmupEpochs": args.warmup, "epochSeconds": timed, "medianEpochSeconds": med,
          "gflops": 6 * macs * n / med / 1e9 if med else None,
          "timing": "time.perf_counter() around each epoch's batch loop (randperm, gather, forward, backward, Adam step, loss.item())",
          "extrapolated": False, "lossPerEpoch": [r["loss"] for r in runs],
          "rssAfterLoadKiB": rss_after_load, "rssEndKiB": rss_kib(), "maxRssKiB": max_rss_kib()})


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, don't die silently
        emit({"kind": "error", "child": "pytorch-cnn", "message": "".join(traceback.format_exception(type(e), e, e.__traceback__))})
        sys.exit(1)
