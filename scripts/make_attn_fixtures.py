#!/work/venv-torch/bin/python
"""PyTorch parity fixtures for ferronet's MultiHeadAttention.

Regenerate from the repo root (needs PyTorch; CI never runs this):

    /work/venv-torch/bin/python scripts/make_attn_fixtures.py

Writes test/fixtures/parity/attn.json in the case format of layers.json (see
scripts/make_layer_fixtures.py), read by crates/ferronet-core/tests/parity_attn.rs
through ops::testing::run_parity_case. Each case is one MultiHeadAttention node,
PyTorch's nn.MultiheadAttention(C, H, bias=..., batch_first=True) called as
mha(x, x, x, need_weights=False, attn_mask=causal or None), causal being the
boolean mask True above the diagonal (= -inf added to those scores).

Inputs and parameters are float32 values (PyTorch's default init after
torch.manual_seed(k), with the zero-initialised biases then overwritten by
non-trivial float32 draws, since zeros cannot tell a missing bias from a present
one); all math is float64 on those values. The loss is sum(out * gradOutput),
so the gradients written are d loss / d input and / d every parameter.

Each case also records "float32Deviation": the largest relative error (the
runner's measure, floor 1e-2 x the tensor's largest |value|) of PyTorch's own
float32 run of the case against this float64 reference, over output, input
gradient and parameter gradients. It is ~1e-5 here (up to 1.2e-5): the float32
rounding of these chains of products is that large, so parity_attn.rs allows
max(1e-5, 2 x float32Deviation) per case instead of a flat 1e-5.
"""

import copy
import json
import os

import torch
from torch import nn


def f32(t):
    return t.to(torch.float32).to(torch.float64)


def tensor_json(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().to(torch.float64).reshape(-1).tolist()]}


def rel_err(a, b):
    m = b.abs().max()
    return ((a - b).abs() / torch.maximum(b.abs(), 1e-2 * m).clamp_min(1e-30)).max().item()


def float32_deviation(mha64, x, grad_out, mask, ref):
    """The runner's relative error of PyTorch float32 against the float64 results `ref`."""
    mha = mha64.float()
    x = x.detach().float().requires_grad_(True)
    out, _ = mha(x, x, x, need_weights=False, attn_mask=mask)
    (out * grad_out.float()).sum().backward()
    got = [out, x.grad] + [p.grad for _, p in mha.named_parameters()]
    return max(rel_err(g.double(), r) for g, r in zip(got, ref))


def case(k, name, batch, t, c, heads, causal, bias):
    torch.manual_seed(k)
    mha = nn.MultiheadAttention(c, heads, bias=bias, batch_first=True)
    g = torch.Generator().manual_seed(1000 + k)
    with torch.no_grad():
        if bias:
            mha.in_proj_bias.copy_(torch.empty(3 * c).uniform_(-0.5, 0.5, generator=g))
            mha.out_proj.bias.copy_(torch.empty(c).uniform_(-0.5, 0.5, generator=g))
    params = {f"0.{n}": f32(p.detach()) for n, p in mha.state_dict().items()}
    mha = mha.double()
    x = f32(torch.empty(batch, t, c).uniform_(-1, 1, generator=g)).requires_grad_(True)
    grad_out = f32(torch.randn(batch, t, c, generator=g, dtype=torch.float64))
    mask = torch.ones(t, t, dtype=torch.bool).triu(1) if causal else None
    out, _ = mha(x, x, x, need_weights=False, attn_mask=mask)
    (out * grad_out).sum().backward()
    ref = [out.detach(), x.grad] + [p.grad.clone() for _, p in mha.named_parameters()]
    deviation = float32_deviation(copy.deepcopy(mha), x, grad_out, mask, ref)
    config = {"numHeads": heads}
    if causal:
        config["causal"] = True
    if not bias:
        config["bias"] = False
    spec = {
        "format": "ferronet-graph",
        "version": 1,
        "inputs": [{"name": "input", "shape": [t, c]}],
        "nodes": [{"name": "0", "op": "MultiHeadAttention", "inputs": ["input"], "config": config}],
        "outputs": ["0"],
    }
    return {
        "name": name,
        "spec": spec,
        "mode": "train",
        "seeds": {"init": k, "noise": 1000 + k},
        "inputSource": "uniform(-1, 1) float32",
        "input": tensor_json(x),
        "params": {n: tensor_json(p) for n, p in params.items()},
        "gradOutput": tensor_json(grad_out),
        "output": tensor_json(out),
        "inputGrad": tensor_json(x.grad),
        "paramGrads": {f"0.{n}": tensor_json(p.grad) for n, p in mha.named_parameters()},
        "float32Deviation": deviation,
    }


def main():
    specs = [
        ("attn_full_bias", 3, 7, 8, 2, False, True),
        ("attn_causal_bias", 3, 7, 8, 2, True, True),
        ("attn_full_nobias", 2, 6, 12, 3, False, False),
        ("attn_causal_nobias", 2, 6, 12, 3, True, False),
        # More steps than one causal row block (16), 4 heads of 4.
        ("attn_causal_long", 2, 37, 16, 4, True, True),
        ("attn_one_head", 2, 5, 6, 1, True, True),
        # The GPT target's sequence length (T 64: four causal blocks), kept small.
        ("attn_causal_t64", 1, 64, 16, 2, True, True),
    ]
    cases = [case(k, *s) for k, s in enumerate(specs)]
    out = {
        "generator": "scripts/make_attn_fixtures.py",
        "torch_version": torch.__version__,
        "description": "nn.MultiheadAttention self-attention (batch_first, need_weights=False), float64 math from float32 values",
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "parity", "attn.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"), allow_nan=False)
    print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
