#!/usr/bin/env python3
"""Model-file fixtures: prove that PyTorch reads ferronet's files and ferronet reads PyTorch's.

Step 2 (step 1 is scripts/make_model_files.mjs, which writes the ferronet files and
inputs.json).  Needs torch and safetensors (a venv: `pip install torch safetensors`):

    node scripts/make_model_files.mjs && /work/venv-torch/bin/python scripts/make_model_file_fixtures.py

For each architecture (mlp, cnn; the same nn.Sequential as ferronet's layers):

* ferronet -> PyTorch: loads test/fixtures/model-files/ferronet-<name>.safetensors
  with safetensors.torch.load_file + load_state_dict(strict=True) and records the
  eval-mode outputs on inputs.json as "fromFerronetFile".
* PyTorch -> ferronet: builds the model with torch.manual_seed(3), trains 30 SGD
  steps in train mode on the same inputs (so BatchNorm's running statistics and
  num_batches_tracked move), writes torch-<name>.safetensors with
  safetensors.torch.save_file(model.state_dict()) and records its eval-mode outputs
  as "fromTorchFile".

Everything goes to expected.json.  Outputs are float32 PyTorch results; ferronet
must agree to 1e-5.
"""
import json
import pathlib

import sys

import safetensors.torch
import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "python"))
import ferronet_torch  # noqa: E402  (python/ferronet_torch.py: the spec in the header rebuilds the module)

OUT = pathlib.Path("test/fixtures/model-files")


def mlp():
    return nn.Sequential(nn.Linear(784, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 10))


def main():
    torch.set_num_threads(1)
    inputs = json.loads((OUT / "inputs.json").read_text())
    x = torch.tensor(inputs["data"], dtype=torch.float32).reshape(inputs["shape"])
    expected = {"torch_version": torch.__version__, "models": {}}
    for name, make in [("mlp", mlp), ("cnn", cnn)]:
        xin = x.reshape(8, 784) if name == "mlp" else x
        # ferronet -> PyTorch
        model = make()
        state = safetensors.torch.load_file(str(OUT / f"ferronet-{name}.safetensors"))
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            from_ferronet = model(xin)
            # The file alone rebuilds the same module (python/ferronet_torch.py).
            rebuilt = ferronet_torch.load(str(OUT / f"ferronet-{name}.safetensors"))(xin)
        assert torch.equal(rebuilt, from_ferronet), f"{name}: ferronet_torch.load differs from the hand-built nn.Sequential"
        # PyTorch -> ferronet
        torch.manual_seed(3)
        model = make()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        labels = torch.arange(8) % 10
        model.train()
        for _ in range(30):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xin), labels).backward()
            opt.step()
        safetensors.torch.save_file(model.state_dict(), str(OUT / f"torch-{name}.safetensors"))
        model.eval()
        with torch.no_grad():
            from_torch = model(xin)
        expected["models"][name] = {
            "fromFerronetFile": from_ferronet.flatten().tolist(),
            "fromTorchFile": from_torch.flatten().tolist(),
            "stateDictKeys": list(model.state_dict().keys()),
        }
        print(name, "ok", list(model.state_dict().keys()))
    (OUT / "expected.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    main()
