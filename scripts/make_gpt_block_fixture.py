#!/usr/bin/env python3
"""One GPT block end to end against PyTorch: test/fixtures/parity/gpt_block.json.

    /work/venv-torch/bin/python scripts/make_gpt_block_fixture.py   (or any python with torch)

The block is a pre-LayerNorm transformer block as in GPT-2 / nanoGPT:
    x → LayerNorm(ln1) → MultiHeadAttention(attn, causal) → Add(res1: x + ·)
      → LayerNorm(ln2) → Linear(fc, 4C) → GELU(gelu) → Linear(proj, C) → Add(res2: res1 + ·)
on input [B, T, C], written as a ferronet graph spec and as PyTorch modules
(nn.LayerNorm, nn.MultiheadAttention(batch_first=True) with a boolean causal mask,
nn.Linear, nn.GELU), named like the spec's nodes so the parameter names match.
Same conventions as scripts/make_layer_fixtures.py: float32 inputs and initial
parameters (PyTorch's default init after torch.manual_seed(0), LayerNorm's weight
and bias then set to non-trivial float32 values), all math in float64, results
written with repr; one case in the format ops/testing.rs `run_parity_case` reads.
"""

import json
import os

import torch
import torch.nn as nn

B, T, C, HEADS = 2, 6, 8, 2
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "parity", "gpt_block.json")


def f32(t):
    return t.to(torch.float32).to(torch.float64)


def tensor_json(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().to(torch.float64).reshape(-1).tolist()]}


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(C)
        self.attn = nn.MultiheadAttention(C, HEADS, batch_first=True)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.proj = nn.Linear(4 * C, C)
        self.gelu = nn.GELU()

    def forward(self, x):
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, need_weights=False, attn_mask=mask)
        r1 = x + a
        return r1 + self.proj(self.gelu(self.fc(self.ln2(r1))))


def main():
    torch.manual_seed(0)
    block = Block()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for ln in (block.ln1, block.ln2):
            ln.weight.copy_(1 + 0.3 * torch.randn(C, generator=g))
            ln.bias.copy_(0.2 * torch.randn(C, generator=g))
        # nn.MultiheadAttention starts its biases at 0: make them non-trivial too.
        block.attn.in_proj_bias.copy_(0.1 * torch.randn(3 * C, generator=g))
        block.attn.out_proj.bias.copy_(0.1 * torch.randn(C, generator=g))
        for p in block.parameters():
            p.copy_(f32(p))
    x32 = f32(torch.randn(B, T, C, generator=g))
    grad_out = f32(torch.randn(B, T, C, generator=g))
    params = {n: tensor_json(p) for n, p in block.named_parameters()}
    b64 = block.double()
    x = x32.clone().requires_grad_(True)
    y = b64(x)
    y.backward(grad_out)
    spec = {
        "format": "ferronet-graph",
        "version": 1,
        "inputs": [{"name": "input", "shape": [T, C]}],
        "nodes": [
            {"name": "ln1", "op": "LayerNorm", "inputs": ["input"]},
            {"name": "attn", "op": "MultiHeadAttention", "inputs": ["ln1"], "config": {"numHeads": HEADS, "causal": True}},
            {"name": "res1", "op": "Add", "inputs": ["input", "attn"]},
            {"name": "ln2", "op": "LayerNorm", "inputs": ["res1"]},
            {"name": "fc", "op": "Linear", "inputs": ["ln2"], "config": {"outFeatures": 4 * C}},
            {"name": "gelu", "op": "GELU", "inputs": ["fc"]},
            {"name": "proj", "op": "Linear", "inputs": ["gelu"], "config": {"outFeatures": C}},
            {"name": "res2", "op": "Add", "inputs": ["res1", "proj"]},
        ],
        "outputs": ["res2"],
    }
    case = {
        "name": "gpt_block_causal",
        "spec": spec,
        "mode": "train",
        "input": tensor_json(x32),
        "params": params,
        "output": tensor_json(y),
        "gradOutput": tensor_json(grad_out),
        "inputGrad": tensor_json(x.grad),
        "paramGrads": {n: tensor_json(p.grad) for n, p in b64.named_parameters()},
    }
    doc = {"generator": "scripts/make_gpt_block_fixture.py", "torch_version": torch.__version__, "cases": [case]}
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {OUT}: names {list(params)}")


if __name__ == "__main__":
    main()
