#!/usr/bin/env python3
"""PyTorch parity fixtures for a VAE's pieces: test/fixtures/parity/vae.json.

Regenerate from the repo root (needs PyTorch; CI never runs this):

    /work/venv-torch/bin/python scripts/make_vae_fixtures.py

Conventions as scripts/make_layer_fixtures.py: tensors are {"shape", "data"}
row-major in PyTorch's layout; inputs and parameters are float32 values, all math
in float64 from them (autograd on .double() copies), results written with repr.
Cases:

* "kl": KL(N(mean, exp(logvar)) || N(0, 1)) per sample, -0.5*sum(1 + lv - m^2 - e^lv),
  its value and the gradients of sum(kl * dkl).
* "reparameterize": z = mean + exp(0.5*logvar)*eps with eps given (PyTorch's own
  randn cannot be matched by our counter-based stream, so eps is an input here),
  the gradients of sum(z * dz).
* "bce": F.binary_cross_entropy(p, y, reduction="sum") / rows (the loss per sample
  as PyTorch's examples/vae reports it) and d(sum)/dp, with p at 0 and 1 too (the
  log clamp at -100).
* "vae": PyTorch's examples/vae model, small (12 -> 8 -> (3, 3) -> 8 -> 12), as a
  ferronet graph spec with outputs [recon, kl]; the loss is BCE(recon, x, sum) + KLD
  summed over the batch, with z = mean (eval mode, eps = 0: the sampling itself is
  the "reparameterize" case). Written: the spec, the parameters by state_dict name,
  x, the loss per sample of each term and their sum, and d(loss summed over the
  batch)/d parameter.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "parity", "vae.json")


def t32(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).float()


def tj(t):
    t = t.detach()
    return {"shape": list(t.shape), "data": [float(v) for v in t.double().flatten().tolist()]}


def kl_case():
    B, Z = 4, 5
    m, lv, g = t32(B, Z), t32(B, Z, scale=0.8), t32(B, 1)
    md, lvd = m.double().requires_grad_(), lv.double().requires_grad_()
    kl = -0.5 * torch.sum(1 + lvd - md.pow(2) - lvd.exp(), dim=1, keepdim=True)
    (kl * g.double()).sum().backward()
    return {"mean": tj(m), "logvar": tj(lv), "dkl": tj(g), "kl": tj(kl), "dmean": tj(md.grad), "dlogvar": tj(lvd.grad)}


def reparameterize_case():
    B, Z = 4, 5
    m, lv, eps, g = t32(B, Z), t32(B, Z, scale=0.8), t32(B, Z), t32(B, Z)
    md, lvd = m.double().requires_grad_(), lv.double().requires_grad_()
    z = md + torch.exp(0.5 * lvd) * eps.double()
    (z * g.double()).sum().backward()
    return {"mean": tj(m), "logvar": tj(lv), "eps": tj(eps), "dz": tj(g), "z": tj(z), "dmean": tj(md.grad), "dlogvar": tj(lvd.grad)}


def bce_case():
    B, D = 3, 6
    p = torch.sigmoid(t32(B, D, scale=2.0)).float()
    p[0, 0], p[1, 1] = 0.0, 1.0  # the clamp
    y = torch.rand(B, D).float()
    y[0, 0], y[1, 1] = 0.25, 0.75
    pd = p.double().requires_grad_()
    loss = F.binary_cross_entropy(pd, y.double(), reduction="sum")
    loss.backward()
    grad = pd.grad.clone()
    # PyTorch's backward at p = 0 or 1: (p - y) / max(p (1 - p), 1e-12).
    return {"p": tj(p), "y": tj(y), "loss_per_sample": float(loss.detach()) / B, "dp_sum": tj(grad)}


def vae_case():
    D, H, Z, B = 12, 8, 3, 5
    torch.manual_seed(1)
    fc1, fc21, fc22, fc3, fc4 = (torch.nn.Linear(a, b) for a, b in [(D, H), (H, Z), (H, Z), (Z, H), (H, D)])
    mods = {"fc1": fc1, "fc21": fc21, "fc22": fc22, "fc3": fc3, "fc4": fc4}
    x = torch.rand(B, D).float()
    x[0, :3] = torch.tensor([0.0, 1.0, 0.5])
    d = {k: m.double() for k, m in mods.items()}
    xd = x.double()
    h1 = F.relu(d["fc1"](xd))
    mu, logvar = d["fc21"](h1), d["fc22"](h1)
    z = mu  # eval: eps = 0
    recon = torch.sigmoid(d["fc4"](F.relu(d["fc3"](z))))
    bce = F.binary_cross_entropy(recon, xd, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    (bce + kld).backward()
    spec = {
        "format": "ferronet-graph", "version": 1,
        "inputs": [{"name": "input", "shape": [D]}],
        "nodes": [
            {"name": "fc1", "op": "Linear", "inputs": ["input"], "config": {"outFeatures": H}},
            {"name": "relu1", "op": "ReLU", "inputs": ["fc1"]},
            {"name": "fc21", "op": "Linear", "inputs": ["relu1"], "config": {"outFeatures": Z}},
            {"name": "fc22", "op": "Linear", "inputs": ["relu1"], "config": {"outFeatures": Z}},
            {"name": "z", "op": "Reparameterize", "inputs": ["fc21", "fc22"], "config": {}},
            {"name": "kl", "op": "KLDivergence", "inputs": ["fc21", "fc22"]},
            {"name": "fc3", "op": "Linear", "inputs": ["z"], "config": {"outFeatures": H}},
            {"name": "relu3", "op": "ReLU", "inputs": ["fc3"]},
            {"name": "fc4", "op": "Linear", "inputs": ["relu3"], "config": {"outFeatures": D}},
            {"name": "recon", "op": "Sigmoid", "inputs": ["fc4"]},
        ],
        "outputs": ["recon", "kl"],
    }
    params, grads = {}, {}
    for k, m in mods.items():
        for n in ("weight", "bias"):
            params[f"{k}.{n}"] = tj(getattr(m, n))
            grads[f"{k}.{n}"] = tj(getattr(d[k], n).grad)
    return {
        "spec": spec, "params": params, "x": tj(x),
        "recon_per_sample": float(bce.detach()) / B, "kl_per_sample": float(kld.detach()) / B, "loss_per_sample": float((bce + kld).detach()) / B,
        "grads_of_batch_sum": grads,
    }


def main():
    out = {"torch_version": torch.__version__, "kl": kl_case(), "reparameterize": reparameterize_case(), "bce": bce_case(), "vae": vae_case()}
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
