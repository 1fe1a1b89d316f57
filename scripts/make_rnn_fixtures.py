#!/usr/bin/env python3
"""PyTorch parity fixtures for ferronet's recurrent layers (LSTM, GRU).

Regenerate (from the repo root; needs PyTorch):

    /work/venv-torch/bin/python scripts/make_rnn_fixtures.py

Writes test/fixtures/parity/rnn.json (compact JSON), read by
crates/ferronet-core/tests/parity_rnn.rs through ops::testing::run_parity_case.

Each case is one LSTM or GRU node (nn.LSTM / nn.GRU with batch_first=True) on
per-sample input [T, F], in the same case format as layers.json (see
scripts/make_layer_fixtures.py): "spec", "mode", "input", "params" (state_dict
names "0.weight_ih_l0", ...), "gradOutput", "output", "inputGrad",
"paramGrads". Cases with initial states have a spec with the inputs
["input", "h0"(, "c0")], per sample [numLayers, H] (PyTorch's [L, B, H]
transposed to batch-first), given in "extraInputs" {name: tensor} and their
gradients in "extraInputGrads" {name: tensor}.

"returns" selects the output: "sequence" = output [B, T, H]; "last" =
output[:, -1] [B, H]; "state" = LSTM stack(h_n, c_n) as [B, 2, L, H], GRU h_n
as [B, L, H].

Precision: inputs, initial states and parameters are float32 values (the
parameters PyTorch's default init, U(-1/sqrt(H), 1/sqrt(H)), after
torch.manual_seed(k) for case k); all math is float64 (the modules in
.double()), so the results are the float64 reference. gradOutput is N(0, 1)
float32 draws.

"float32Error": the same case run by PyTorch in float32, measured against the
float64 reference as the Rust runner measures (largest |a - b| / max(|b|, 1e-2
max|b|) over output, input, parameter and initial-state gradients). Through
several steps and two layers it reaches ~3.5e-5: the tests allow max(1e-5, 3 x
float32Error) per case, i.e. ferronet in f32 may be at most three times as far
from the float64 result as PyTorch in f32 is (rounding is luck: one summation
order lands 2x away from another's).
"""

import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "parity", "rnn.json")


def tensor(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def f32(t):
    """float32 values held in float64."""
    return t.float().double()


def rel_err(a, b):
    mx = b.abs().max().item()
    return ((a.double() - b).abs() / torch.clamp(b.abs(), min=max(1e-2 * mx, 1e-30))).max().item()


def run(module, cell, returns, x, states, gout=None):
    """Output per `returns` and, given gout, the gradients of sum(out * gout)."""
    torch_states = [s.transpose(0, 1) for s in states]
    if cell == "LSTM":
        seq, (hn, cn) = module(x, tuple(torch_states) if states else None)
    else:
        seq, hn = module(x, torch_states[0] if states else None)
    if returns == "sequence":
        out = seq
    elif returns == "last":
        out = seq[:, -1]
    elif cell == "LSTM":
        out = torch.stack([hn, cn]).permute(2, 0, 1, 3)
    else:
        out = hn.transpose(0, 1)
    return out


def case(k, cell, batch, steps, features, hidden, layers, returns, bias=True, initial=False):
    torch.manual_seed(k)
    cls = torch.nn.LSTM if cell == "LSTM" else torch.nn.GRU
    module = cls(features, hidden, num_layers=layers, bias=bias, batch_first=True)
    params = {f"0.{n}": p.detach().clone() for n, p in module.named_parameters()}
    module32 = cls(features, hidden, num_layers=layers, bias=bias, batch_first=True)
    module32.load_state_dict(module.state_dict())
    module = module.double()
    gen = torch.Generator().manual_seed(1000 + k)
    x = f32(torch.rand(batch, steps, features, generator=gen) * 2 - 1).requires_grad_(True)
    states = []
    if initial:
        names = ["h0", "c0"] if cell == "LSTM" else ["h0"]
        for _ in names:
            states.append(f32(torch.rand(batch, layers, hidden, generator=gen) * 2 - 1).requires_grad_(True))
    out = run(module, cell, returns, x, states)
    gout = f32(torch.randn(out.shape, generator=torch.Generator().manual_seed(2000 + k)))
    (out * gout).sum().backward()
    # The same in float32: how far PyTorch's own f32 lands from the f64 reference.
    x32 = x.detach().float().requires_grad_(True)
    states32 = [s.detach().float().requires_grad_(True) for s in states]
    out32 = run(module32, cell, returns, x32, states32)
    (out32 * gout.float()).sum().backward()
    err32 = max([rel_err(out32.detach(), out.detach()), rel_err(x32.grad, x.grad)]
                + [rel_err(s32.grad, s.grad) for s32, s in zip(states32, states)]
                + [rel_err(p32.grad, p.grad) for p32, p in zip(module32.parameters(), module.parameters())])
    config = {"hiddenSize": hidden, "numLayers": layers, "returns": returns}
    if not bias:
        config["bias"] = False
    inputs = [{"name": "input", "shape": [steps, features]}]
    node_inputs = ["input"]
    extra = {}
    extra_grads = {}
    if initial:
        for name, s in zip(["h0", "c0"], states):
            inputs.append({"name": name, "shape": [layers, hidden]})
            node_inputs.append(name)
            extra[name] = tensor(s)
            extra_grads[name] = tensor(s.grad)
    spec = {
        "format": "ferronet-graph",
        "version": 1,
        "inputs": inputs,
        "nodes": [{"name": "0", "op": cell, "inputs": node_inputs, "config": config}],
        "outputs": ["0"],
    }
    name = f"{cell.lower()}_l{layers}_{returns}" + ("_h0" if initial else "") + ("" if bias else "_nobias")
    c = {
        "name": name,
        "spec": spec,
        "mode": "train",
        "seeds": {"init": k, "input": 1000 + k, "gradOutput": 2000 + k},
        "input": tensor(x),
        "params": {n: tensor(p) for n, p in params.items()},
        "gradOutput": tensor(gout),
        "output": tensor(out),
        "inputGrad": tensor(x.grad),
        "paramGrads": {f"0.{n}": tensor(p.grad) for n, p in module.named_parameters()},
        "float32Error": err32,
    }
    if initial:
        c["extraInputs"] = extra
        c["extraInputGrads"] = extra_grads
    return c


def main():
    defs = []
    for cell in ["LSTM", "GRU"]:
        for returns in ["sequence", "last", "state"]:
            for initial in [False, True]:
                defs.append(dict(cell=cell, layers=2, returns=returns, initial=initial))
        defs.append(dict(cell=cell, layers=1, returns="sequence", initial=False, bias=False))
        defs.append(dict(cell=cell, layers=1, returns="last", initial=True))
    cases = []
    for k, d in enumerate(defs):
        cases.append(case(k, d["cell"], batch=3, steps=6, features=4, hidden=5, layers=d["layers"],
                          returns=d["returns"], bias=d.get("bias", True), initial=d["initial"]))
    doc = {
        "generator": "scripts/make_rnn_fixtures.py",
        "torch_version": torch.__version__,
        "description": "LSTM and GRU (batch_first) against float64 PyTorch: output, input gradient, "
                       "parameter gradients and initial-state gradients; see the script's docstring",
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
