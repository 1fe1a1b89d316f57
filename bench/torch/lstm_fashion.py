#!/usr/bin/env python3
"""PyTorch reference for examples/lstm-fashion.ts and examples/gru-fashion.ts:
sequential Fashion-MNIST, each 28x28 image as 28 steps of 28 pixels (pixels/255,
float32 [N, 28, 28], batch-first), nn.LSTM(28, 128, batch_first=True) (or nn.GRU
with --rnn gru), its output at the last step -> nn.Linear(128, 10);
nn.CrossEntropyLoss, Adam(lr=1e-3), batch 64, the training set reshuffled each
epoch with torch.randperm (last partial batch kept), PyTorch's default init after
torch.manual_seed(seed). Each epoch is timed with time.perf_counter() around the
training loop alone; the test accuracy after it is not timed.

    /work/venv-torch/bin/python bench/torch/lstm_fashion.py [--rnn lstm|gru] [--epochs 2]
        [--threads 2] [--seed 0] [--limit N] [--data /usr/share/datasets/fashion-mnist]

Prints one JSON object: testAccuracy and epochSeconds per epoch, and the config.
--limit N trains on the first N training images and tests on the first N/5.
"""

import argparse
import gzip
import json
import os
import struct
import time

import torch
from torch import nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    zero, dtype, ndim = struct.unpack_from(">HBB", buf, 0)
    assert zero == 0 and dtype == 0x08, f"{path}: not an unsigned-byte IDX file"
    dims = struct.unpack_from(">" + "I" * ndim, buf, 4)
    data = torch.frombuffer(bytearray(buf[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.reshape(dims)


def load(data_dir, prefix):
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz")).to(torch.float32).div_(255.0)
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz")).to(torch.int64)
    return x, y


class Model(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        cls = nn.LSTM if rnn == "lstm" else nn.GRU
        self.rnn = cls(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        seq, _ = self.rnn(x)
        return self.fc(seq[:, -1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rnn", choices=["lstm", "gru"], default="lstm")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "t10k")
    if a.limit:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]
        xte, yte = xte[:max(1, -(-a.limit // 5))], yte[:max(1, -(-a.limit // 5))]
    torch.manual_seed(a.seed)
    model = Model(a.rnn)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(a.seed)
    accs, secs, losses = [], [], []
    for _ in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr), generator=gen)
        total, n = 0.0, 0
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        secs.append(time.perf_counter() - t0)
        losses.append(total / n)
        model.eval()
        with torch.no_grad():
            correct = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, len(xte), 1000))
        accs.append(correct / len(xte))
    print(json.dumps({
        "testAccuracy": accs, "epochSeconds": secs, "losses": losses,
        "config": {"model": f"{a.rnn.upper()}(128) last -> Linear(10)", "framework": "pytorch", "torch": torch.__version__,
                   "epochs": a.epochs, "threads": a.threads, "seed": a.seed, "trainSamples": len(xtr), "testSamples": len(xte),
                   "batchSize": 64, "optimizer": "adam", "lr": 1e-3},
    }))


if __name__ == "__main__":
    main()
