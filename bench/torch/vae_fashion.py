#!/usr/bin/env python3
"""PyTorch's examples/vae on Fashion-MNIST: the reference for examples/vae-fashion.ts.

    /work/venv-torch/bin/python bench/torch/vae_fashion.py --epochs 10 --threads 2 [--seed 0] [--limit N]

The model and loop of pytorch/examples vae/main.py: fc1 784->400, ReLU, fc21/fc22
400->20 (mu, logvar), z = mu + exp(0.5 logvar) * randn, fc3 20->400, ReLU, fc4
400->784, sigmoid; loss = F.binary_cross_entropy(recon, x, reduction='sum') + KLD
(-0.5 * sum(1 + logvar - mu^2 - exp(logvar))), both summed over the batch; Adam
lr 1e-3; batch 128, shuffled every epoch; the test loop samples z too (the
example's reparameterize always does). Inputs are pixel / 255 (ToTensor), read here
straight from the IDX .gz files (no torchvision, no DataLoader: the whole set is one
tensor). Prints one JSON object: test loss per image after every epoch (test_loss /
len(test set), as the example prints it), train loss per image, and seconds per
epoch (training only).
"""
import argparse
import gzip
import json
import os
import struct
import time

import torch
import torch.nn.functional as F
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--limit", type=int, help="train on the first N images, test on the first N/5")
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)


def images(name):
    with gzip.open(os.path.join(args.data, name)) as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, f"{name}: not an IDX image file"
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
    return data.view(n, rows * cols).float() / 255


train, test = images("train-images-idx3-ubyte.gz"), images("t10k-images-idx3-ubyte.gz")
if args.limit:
    train, test = train[: args.limit], test[: max(1, -(-args.limit // 5))]


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld, bce, kld


model = VAE()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
out = {"framework": "pytorch", "torch": torch.__version__, "threads": args.threads, "epochs": args.epochs,
       "trainSamples": len(train), "testSamples": len(test), "testLoss": [], "testRecon": [], "testKl": [],
       "trainLoss": [], "epochSeconds": []}
for epoch in range(1, args.epochs + 1):
    model.train()
    started = time.perf_counter()
    total = 0.0
    for batch in torch.randperm(len(train)).split(args.batch_size):
        x = train[batch]
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        loss, _, _ = loss_function(recon, x, mu, logvar)
        loss.backward()
        total += loss.item()
        optimizer.step()
    out["epochSeconds"].append(time.perf_counter() - started)
    out["trainLoss"].append(total / len(train))
    model.eval()
    sums = [0.0, 0.0, 0.0]
    with torch.no_grad():
        for x in test.split(args.batch_size):
            recon, mu, logvar = model(x)
            for k, v in enumerate(loss_function(recon, x, mu, logvar)):
                sums[k] += v.item()
    out["testLoss"].append(sums[0] / len(test))
    out["testRecon"].append(sums[1] / len(test))
    out["testKl"].append(sums[2] / len(test))
print(json.dumps(out))
