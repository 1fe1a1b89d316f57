#!/usr/bin/env python3
"""Explanation fixtures: saliency, SmoothGrad, Integrated Gradients and Grad-CAM by PyTorch autograd.

Step 2 (step 1 is scripts/make_explain_fixtures.mjs, which trains and saves the
ferronet models and writes inputs.json). Needs torch, numpy and safetensors:

    node scripts/make_explain_fixtures.mjs && /work/venv-torch/bin/python scripts/make_explain_fixtures.py

Each model file is rebuilt as an nn.Module from the file alone (python/ferronet_torch.py,
eval mode). For the three digits of inputs.json (x = pixels / 255, float32):

* saliency: d logit[c] / dx for the predicted class c (and, for digit 0, class
  (c + 1) % 10), by backward of the logits;
* smoothgrad (cnn, digit 0): the mean of those gradients over the noisy copies in
  inputs.json (ferronet's seeded noise, so both sides average the same rows);
* integrated gradients, written out as Captum computes them (captum is not needed):
  baseline + alpha * (x - baseline) for the rule's alphas, gradients of logit[c],
  sum(step_size * grad) * (x - baseline). Default rule: Captum's, 50-point
  Gauss-Legendre from numpy's leggauss (alpha = (1 + x) / 2, step = w / 2); also
  riemann_middle (16 points) and a trapezoid rule (10 points, weights 1/(n-1), halved
  at the ends) from a constant baseline 0.25;
* grad-cam (cnn): forward hook on the layer's module, a tensor hook for its
  gradient, w_k = grad.mean((2, 3)), relu(sum_k w_k A_k), F.interpolate(bilinear,
  align_corners=False) to 28 x 28, then (m - min) / (max - min); at the default
  layer (the last conv, node "4"), and for one digit at the ReLU after it ("5") and
  at the first block's ReLU ("2", 26 x 26).

Tensors are stored as little-endian float32, base64, in expected.json.
"""
import base64
import json
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "python"))
import ferronet_torch  # noqa: E402

OUT = pathlib.Path("test/fixtures/explain")


def b64(t):
    a = np.ascontiguousarray(np.asarray(t.detach().cpu() if torch.is_tensor(t) else t, dtype="<f4"))
    return base64.b64encode(a.tobytes()).decode("ascii")


def unb64(s):
    return torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype="<f4").copy())


def gradients(model, x, classes):
    """d output[r, classes[r]] / d x[r] for each row (eval mode: rows are independent)."""
    x = x.clone().requires_grad_(True)
    out = model(x)
    out.gather(1, torch.tensor(classes).view(-1, 1)).sum().backward()
    return x.grad.detach(), out.detach()


def rule(method, n):
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return list(0.5 * (1 + nodes)), list(0.5 * weights)
    if method == "riemann_middle":
        return list(np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)), [1 / n] * n
    if method == "riemann_trapezoid":
        w = [1 / (n - 1)] * n
        w[0] /= 2
        w[-1] /= 2
        return list(np.linspace(0, 1, n)), w
    raise ValueError(method)


def integrated_gradients(model, x, c, baseline, method, n):
    """Captum's IntegratedGradients._attribute for one sample, with autograd."""
    alphas, steps = rule(method, n)
    scaled = torch.cat([baseline + a * (x - baseline) for a in alphas], dim=0)
    grads, _ = gradients(model, scaled, [c] * n)
    total = (grads.double().reshape(n, -1) * torch.tensor(steps, dtype=torch.float64).view(n, 1)).sum(0)
    attr = total * (x - baseline).double().reshape(-1)
    with torch.no_grad():
        fx = model(x)[0, c].item()
        fb = model(baseline.expand_as(x))[0, c].item()
    return attr, fx, fb


def grad_cam(model, x, c, layer):
    store = {}
    module = getattr(model, layer)

    def hook(_m, _inp, out):
        store["A"] = out
        out.register_hook(lambda g: store.__setitem__("G", g))

    handle = module.register_forward_hook(hook)
    try:
        out = model(x)
        out[0, c].backward()
    finally:
        handle.remove()
    a, g = store["A"].detach(), store["G"].detach()
    w = g.mean(dim=(2, 3))  # [1, C]
    cam = F.relu((w[:, :, None, None] * a).sum(1, keepdim=True))  # [1, 1, h, w]
    up = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[0, 0]
    lo, hi = up.min(), up.max()
    norm = (up - lo) / (hi - lo) if hi > lo else torch.zeros_like(up)
    return {"layer": layer, "layerShape": list(a.shape[1:]), "weights": b64(w[0]), "cam": b64(cam[0, 0]), "map": b64(norm)}


def main():
    torch.set_num_threads(1)
    inputs = json.loads((OUT / "inputs.json").read_text())
    pixels = torch.tensor(inputs["pixels"], dtype=torch.float64)
    x_all = (pixels / 255).float().reshape(-1, 1, 28, 28)
    expected = {"torch_version": torch.__version__, "numpy_version": np.__version__, "models": {}}
    for name in ["cnn", "mlp"]:
        model = ferronet_torch.load(str(OUT / f"{name}.safetensors"))
        xs = x_all if name == "cnn" else x_all.reshape(-1, 784)
        with torch.no_grad():
            logits = model(xs)
        predicted = logits.argmax(1).tolist()
        grads, _ = gradients(model, xs, predicted)
        other = (predicted[0] + 1) % 10
        grad_other, _ = gradients(model, xs[:1], [other])
        m = {
            "logits": b64(logits), "predicted": predicted,
            "saliency": [b64(g) for g in grads],
            "saliencyOther": {"digit": 0, "classIndex": other, "map": b64(grad_other[0])},
            "integratedGradients": [],
        }
        zero = torch.zeros_like(xs[:1])
        for d in range(len(predicted)):
            attr, fx, fb = integrated_gradients(model, xs[d : d + 1], predicted[d], zero, "gausslegendre", 50)
            m["integratedGradients"].append({"digit": d, "method": "gausslegendre", "steps": 50, "baseline": 0, "map": b64(attr), "score": fx, "baselineScore": fb, "attributionSum": attr.sum().item()})
        for d, method, n, base in [(0, "riemann_middle", 16, 0.0), (1, "riemann_trapezoid", 10, 0.25)]:
            attr, fx, fb = integrated_gradients(model, xs[d : d + 1], predicted[d], torch.full_like(xs[:1], base), method, n)
            m["integratedGradients"].append({"digit": d, "method": method, "steps": n, "baseline": base, "map": b64(attr), "score": fx, "baselineScore": fb, "attributionSum": attr.sum().item()})
        sg = inputs["smoothGrad"]
        if sg["model"] == name:
            noisy = unb64(sg["noisy"]).reshape(sg["samples"], *xs.shape[1:])
            g, _ = gradients(model, noisy, [predicted[sg["digit"]]] * sg["samples"])
            m["smoothGrad"] = {"digit": sg["digit"], "classIndex": predicted[sg["digit"]], "map": b64(g.double().mean(0).float())}
        if name == "cnn":
            m["gradCam"] = [dict(grad_cam(model, xs[d : d + 1], predicted[d], "4"), digit=d) for d in range(len(predicted))]
            m["gradCam"] += [dict(grad_cam(model, xs[2:3], predicted[2], layer), digit=2) for layer in ("5", "2")]
        expected["models"][name] = m
        print(f"{name}: predicted {predicted} (labels {inputs['labels']})")
    (OUT / "expected.json").write_text(json.dumps(expected))
    print(f"wrote {OUT / 'expected.json'}")


if __name__ == "__main__":
    main()
