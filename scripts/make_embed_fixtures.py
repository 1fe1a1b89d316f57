#!/usr/bin/env python3
"""PyTorch parity fixtures for the token layers: Embedding (repeated ids, paddingIdx),
PositionEmbedding, LayerNorm (with and without affine, without bias) and a tied
embedding + output projection (nanoGPT's lm_head.weight = wte.weight).

    /work/venv-torch/bin/python scripts/make_embed_fixtures.py

Writes test/fixtures/parity/embed.json in the case format of layers.json (see
scripts/make_layer_fixtures.py; read by ops::testing::run_parity_case): inputs and
parameters are float32 values, every result is float64 PyTorch math from them.
Ids are JSON integers. Deterministic: fixed seeds per case.
"""
import json
import os

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float32)


def tensor_json(t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32):
        data = [int(v) for v in t.flatten().tolist()]
    else:
        data = [float(v) for v in t.double().flatten().tolist()]
    return {"shape": list(t.shape), "data": data}


def f32(t):
    return t.float().double()


class PositionEmbedding(nn.Module):
    """ferronet's PositionEmbedding: x + wpe.weight[:T] (GPT-2's wpe lookup of 0..T)."""

    def __init__(self, num_positions, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_positions, dim))
        nn.init.normal_(self.weight)

    def forward(self, x):
        return x + self.weight[: x.shape[1]]


def make_module(op, cfg, in_shape):
    if op == "Embedding":
        return nn.Embedding(cfg["numEmbeddings"], cfg["embeddingDim"], padding_idx=cfg.get("paddingIdx"))
    if op == "PositionEmbedding":
        return PositionEmbedding(cfg.get("numPositions", in_shape[0]), in_shape[1])
    if op == "LayerNorm":
        return nn.LayerNorm(in_shape[-1], eps=cfg.get("eps", 1e-5), elementwise_affine=cfg.get("elementwiseAffine", True),
                            bias=cfg.get("bias", True))
    if op == "Linear":
        return nn.Linear(in_shape[-1], cfg["outFeatures"], bias=cfg.get("bias", True))
    raise ValueError(op)


def out_shape(op, cfg, in_shape):
    if op == "Embedding":
        return in_shape + [cfg["embeddingDim"]]
    if op == "Linear":
        return in_shape[:-1] + [cfg["outFeatures"]]
    return in_shape


def case(k, name, in_shape, layers, ids=None, vocab=None, perturb=False):
    """A chain of `layers` [(op, config)] on per-sample `in_shape`, nodes named by the
    configs' "name" key; `ids`: integer inputs drawn in 0..vocab (with repeats)."""
    torch.manual_seed(k)
    nodes, mods, shape = [], [], list(in_shape)
    prev = "input"
    for op, cfg in layers:
        cfg = dict(cfg)
        nm = cfg.pop("name")
        nodes.append({"name": nm, "op": op, "inputs": [prev], "config": cfg})
        m = make_module(op, cfg, shape)
        if perturb and op == "LayerNorm" and m.weight is not None:
            with torch.no_grad():
                m.weight.copy_(1 + 0.5 * torch.randn(m.weight.shape))
                if m.bias is not None:
                    m.bias.copy_(0.3 * torch.randn(m.bias.shape))
        mods.append((nm, op, cfg, m))
        shape = out_shape(op, cfg, shape)
        prev = nm
    # Ties: a Linear with tiedTo shares the Embedding's weight (PyTorch's tie).
    by_name = {nm: m for nm, _, _, m in mods}
    for nm, op, cfg, m in mods:
        if op == "Linear" and "tiedTo" in cfg:
            m.weight = by_name[cfg["tiedTo"]].weight
    spec = {"format": "ferronet-graph", "version": 1, "inputs": [{"name": "input", "shape": list(in_shape)}],
            "nodes": nodes, "outputs": [prev]}
    g = torch.Generator().manual_seed(1000 + k)
    B = 3
    if ids is not None:
        x = torch.randint(0, vocab, (B, *in_shape), generator=g)
    else:
        x = torch.randn((B, *in_shape), generator=g)
    params = {}
    for nm, op, cfg, m in mods:
        for pn, p in m.named_parameters():
            params[f"{nm}.{pn}"] = p
    # float64 copies of the float32 values, ties kept.
    for _, _, _, m in mods:
        m.double()
    for nm, op, cfg, m in mods:
        if op == "Linear" and "tiedTo" in cfg:
            m.weight = by_name[cfg["tiedTo"]].weight
    h = x if ids is not None else f32(x).requires_grad_(True)
    inp = h
    for _, _, _, m in mods:
        h = m(h)
    go = torch.randn(h.shape, generator=g).double()
    (h * go).sum().backward()
    out = {
        "name": name,
        "spec": spec,
        "mode": "train",
        "params": {n: tensor_json(by_name[n.split(".")[0]].get_parameter(n.split(".", 1)[1])) for n in params},
        "input": tensor_json(x),
        "output": tensor_json(h),
        "gradOutput": tensor_json(go),
        "paramGrads": {n: tensor_json(by_name[n.split(".")[0]].get_parameter(n.split(".", 1)[1]).grad) for n in params},
    }
    if ids is None:
        out["inputGrad"] = tensor_json(inp.grad)
    return out


def main():
    defs = [
        ("embedding_repeated_ids", [5], [("Embedding", {"name": "wte", "numEmbeddings": 4, "embeddingDim": 6})], dict(ids=True, vocab=4)),
        ("embedding_padding_idx", [6], [("Embedding", {"name": "wte", "numEmbeddings": 5, "embeddingDim": 3, "paddingIdx": 2})],
         dict(ids=True, vocab=5)),
        ("position_embedding", [5, 4], [("PositionEmbedding", {"name": "wpe", "numPositions": 8})], {}),
        ("layernorm_affine", [4, 6], [("LayerNorm", {"name": "ln"})], dict(perturb=True)),
        ("layernorm_no_affine", [4, 6], [("LayerNorm", {"name": "ln", "elementwiseAffine": False, "eps": 1e-3})], {}),
        ("layernorm_no_bias_1d", [7], [("LayerNorm", {"name": "ln", "bias": False})], dict(perturb=True)),
        ("tied_embedding_projection", [6], [
            ("Embedding", {"name": "wte", "numEmbeddings": 9, "embeddingDim": 8}),
            ("PositionEmbedding", {"name": "wpe", "numPositions": 10}),
            ("LayerNorm", {"name": "ln"}),
            ("Linear", {"name": "lm_head", "outFeatures": 9, "bias": False, "tiedTo": "wte"}),
        ], dict(ids=True, vocab=9, perturb=True)),
        ("tied_projection_with_bias", [4], [
            ("Embedding", {"name": "wte", "numEmbeddings": 7, "embeddingDim": 5}),
            ("LayerNorm", {"name": "ln"}),
            ("Linear", {"name": "lm_head", "outFeatures": 7, "tiedTo": "wte"}),
        ], dict(ids=True, vocab=7, perturb=True)),
    ]
    cases = []
    for k, (name, shape, layers, kw) in enumerate(defs):
        ids = kw.pop("ids", None)
        cases.append(case(k, name, shape, layers, ids=ids, **kw))
    # Every id case repeats ids (the scatter-add is what they test).
    for c in cases:
        if c["input"]["data"] and isinstance(c["input"]["data"][0], int):
            assert len(set(c["input"]["data"])) < len(c["input"]["data"]), c["name"]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    path = os.path.join(root, "test", "fixtures", "parity", "embed.json")
    with open(path, "w") as f:
        json.dump({"generator": "scripts/make_embed_fixtures.py", "torch_version": torch.__version__, "cases": cases}, f,
                  separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
