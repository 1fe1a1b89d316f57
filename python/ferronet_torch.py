"""Rebuild a ferronet model file as a PyTorch module, from the file alone.

ferronet saves safetensors files whose tensors carry PyTorch's state_dict names
and shapes, and whose header holds the model's graph spec (`ferronet.spec`,
docs/graph-spec.md). This module turns that spec into an `nn.Module` with one
submodule per node (so the state_dict names match) and loads the weights:

    import ferronet_torch
    model = ferronet_torch.load("digits.safetensors")   # eval mode
    model(torch.rand(8, 784)).argmax(1)

Needs torch and safetensors. Lazy modules infer the input sizes from one dry run
on zeros of the spec's input shape, before the weights are loaded (strict).
"""

import json

import safetensors
import safetensors.torch
import torch
from torch import nn


def _pair(v):
    return tuple(v) if isinstance(v, list) else v


class Embedding(nn.Embedding):
    """nn.Embedding on ferronet's float ids (cast to int64)."""

    def forward(self, ids):
        return super().forward(ids.long())


class PositionEmbedding(nn.Module):
    """ferronet's PositionEmbedding (GPT-2's wpe): x + weight[:T], weight [numPositions, C]
    (an nn.Embedding-style table looked up at 0..T); sized on the first call."""

    def __init__(self, num_positions=None):
        super().__init__()
        self.num_positions = num_positions
        self.register_parameter("weight", None)

    def forward(self, x):
        if self.weight is None:
            self.weight = nn.Parameter(torch.zeros(self.num_positions or x.shape[1], x.shape[2]))
        return x + self.weight[: x.shape[1]]


class LayerNorm(nn.Module):
    """nn.LayerNorm over the last dim, its size taken from the first call."""

    def __init__(self, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__()
        self.eps, self.affine, self.has_bias = eps, elementwise_affine, elementwise_affine and bias
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        self.size = None

    def forward(self, x):
        if self.size is None:
            self.size = x.shape[-1]
            if self.affine:
                self.weight = nn.Parameter(torch.ones(self.size))
            if self.has_bias:
                self.bias = nn.Parameter(torch.zeros(self.size))
        return nn.functional.layer_norm(x, (self.size,), self.weight, self.bias, self.eps)


class SelfAttention(nn.MultiheadAttention):
    """ferronet's MultiHeadAttention: nn.MultiheadAttention(C, numHeads, dropout, bias,
    batch_first=True) called as mha(x, x, x, need_weights=False, attn_mask=causal), the
    mask True above the diagonal. A subclass (not a wrapper) so that its state_dict
    names are nn.MultiheadAttention's own: <node>.in_proj_weight, <node>.out_proj.weight.
    C is the input's last dimension, known at the first call (the dry run of `load`),
    so nn.MultiheadAttention.__init__ runs then, as lazy modules create their weights."""

    def __init__(self, num_heads, causal=False, dropout=0.0, bias=True):
        nn.Module.__init__(self)
        self._config = (num_heads, causal, dropout, bias)

    def forward(self, x):
        num_heads, causal, dropout, bias = self._config
        if not hasattr(self, "in_proj_weight"):
            training = self.training
            nn.MultiheadAttention.__init__(self, x.shape[-1], num_heads, dropout=dropout, bias=bias, batch_first=True,
                                           device=x.device, dtype=x.dtype)
            self._config = (num_heads, causal, dropout, bias)
            self.train(training)
        t = x.shape[-2]
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1) if causal else None
        return super().forward(x, x, x, need_weights=False, attn_mask=mask)[0]
class Reparameterize(nn.Module):
    """z = mean + exp(0.5 logvar) * eps, eps ~ N(0, 1); the mean in eval mode unless sample_in_eval."""

    def __init__(self, sample_in_eval=False):
        super().__init__()
        self.sample_in_eval = sample_in_eval

    def forward(self, mean, logvar):
        if not (self.training or self.sample_in_eval):
            return mean
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


class KLDivergence(nn.Module):
    """KL(N(mean, exp(logvar)) || N(0, 1)) per sample, shape [batch, 1]."""

    def forward(self, mean, logvar):
        return -0.5 * torch.sum((1 + logvar - mean.pow(2) - logvar.exp()).flatten(1), dim=1, keepdim=True)


def _module(op, c):
    if op == "Embedding":
        return Embedding(c["numEmbeddings"], c["embeddingDim"], padding_idx=c.get("paddingIdx"))
    if op == "PositionEmbedding":
        return PositionEmbedding(c.get("numPositions"))
    if op == "LayerNorm":
        return LayerNorm(c.get("eps", 1e-5), c.get("elementwiseAffine", True), c.get("bias", True))
    if op == "Linear":
        return nn.LazyLinear(c["outFeatures"], bias=c.get("bias", True))
    if op == "Conv2d":
        return nn.LazyConv2d(c["outChannels"], _pair(c["kernelSize"]), stride=_pair(c.get("stride", 1)), padding=_pair(c.get("padding", 0)),
                             dilation=_pair(c.get("dilation", 1)), groups=c.get("groups", 1), bias=c.get("bias", True))
    if op == "MaxPool2d":
        return nn.MaxPool2d(_pair(c["kernelSize"]), stride=_pair(c.get("stride", c["kernelSize"])), padding=_pair(c.get("padding", 0)))
    if op == "AvgPool2d":
        return nn.AvgPool2d(_pair(c["kernelSize"]), stride=_pair(c.get("stride", c["kernelSize"])), padding=_pair(c.get("padding", 0)))
    if op == "AdaptiveAvgPool2d":
        return nn.AdaptiveAvgPool2d(_pair(c["outputSize"]))
    if op in ("BatchNorm1d", "BatchNorm2d"):
        cls = nn.LazyBatchNorm1d if op == "BatchNorm1d" else nn.LazyBatchNorm2d
        return cls(eps=c.get("eps", 1e-5), momentum=c.get("momentum", 0.1), affine=c.get("affine", True))
    if op == "MultiHeadAttention":
        return SelfAttention(c["numHeads"], causal=c.get("causal", False), dropout=c.get("dropout", 0.0), bias=c.get("bias", True))
    simple = {"Dropout": lambda: nn.Dropout(c.get("p", 0.5)), "Flatten": nn.Flatten, "ReLU": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh,
              "SiLU": nn.SiLU, "LeakyReLU": lambda: nn.LeakyReLU(c.get("negativeSlope", 0.01)),
              "GELU": lambda: nn.GELU(approximate=c.get("approximate", "none")),
              "Softmax": lambda: nn.Softmax(dim=c.get("dim", -1)), "LogSoftmax": lambda: nn.LogSoftmax(dim=c.get("dim", -1)),
              "Reparameterize": lambda: Reparameterize(c.get("sampleInEval", False)), "KLDivergence": KLDivergence}
    if op in simple:
        return simple[op]()
    if op in ("LSTM", "GRU"):
        return _Recurrent(op, c)
    raise ValueError(f"ferronet_torch does not know op {op!r}")


class _Recurrent(nn.Module):
    """ferronet's LSTM / GRU: nn.LSTM / nn.GRU (batch_first), built on the first call
    (the input size comes from the input, as the lazy modules do). Its parameters are
    registered on this wrapper itself, so the state_dict names are ferronet's
    (`<node>.weight_ih_l0`, ...). Returns the output `returns` selects; takes optional
    initial states h0 (and c0) as [batch, numLayers, H]."""

    def __init__(self, op, c):
        super().__init__()
        self.op, self.returns = op, c.get("returns", "sequence")
        self.hidden, self.layers, self.bias = c["hiddenSize"], c.get("numLayers", 1), c.get("bias", True)
        self.rnn = None

    def _build(self, features):
        cls = nn.LSTM if self.op == "LSTM" else nn.GRU
        rnn = cls(features, self.hidden, num_layers=self.layers, bias=self.bias, batch_first=True)
        # Parameters at this module's level (state_dict names <node>.weight_ih_l0, ...).
        for name, p in rnn.named_parameters():
            self.register_parameter(name, p)
        object.__setattr__(self, "rnn", rnn)

    def forward(self, x, *states):
        if self.rnn is None:
            self._build(x.shape[-1])
        torch_states = [s.transpose(0, 1).contiguous() for s in states]
        if self.op == "LSTM":
            seq, (hn, cn) = self.rnn(x, tuple(torch_states) if states else None)
        else:
            seq, hn = self.rnn(x, torch_states[0] if states else None)
        if self.returns == "sequence":
            return seq
        if self.returns == "last":
            return seq[:, -1]
        if self.op == "LSTM":
            return torch.stack([hn, cn]).permute(2, 0, 1, 3)
        return hn.transpose(0, 1)


class FerronetModule(nn.Module):
    """The graph of a ferronet spec: nodes run in order, Add and Concat as tensor ops."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        for node in spec["nodes"]:
            if node["op"] in ("Add", "Concat"):
                continue
            if "." in node["name"]:
                raise ValueError(f"node name {node['name']!r} has a dot, which nn.Module names cannot")
            self.add_module(node["name"], _module(node["op"], node.get("config", {})))

    def forward(self, *inputs):
        values = dict(zip((i["name"] for i in self.spec["inputs"]), inputs))
        for node in self.spec["nodes"]:
            args = [values[i] for i in node["inputs"]]
            if node["op"] == "Add":
                out = args[0]
                for a in args[1:]:
                    out = out + a
            elif node["op"] == "Concat":
                out = torch.cat(args, dim=node.get("config", {}).get("dim", 1))
            else:
                out = getattr(self, node["name"])(*args)
            values[node["name"]] = out
        outs = [values[o] for o in self.spec["outputs"]]
        return outs[0] if len(outs) == 1 else tuple(outs)


def tie(model):
    """Weight tying: a Linear with tiedTo shares its Embedding's weight (nanoGPT's
    lm_head.weight = wte.weight); both names stay in the state_dict."""
    for node in model.spec["nodes"]:
        target = node.get("config", {}).get("tiedTo") if node["op"] == "Linear" else None
        if target is not None:
            getattr(model, node["name"]).weight = getattr(model, target).weight


def load(path):
    """The model of a ferronet file, with its weights, in eval mode."""
    with safetensors.safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    if "ferronet.spec" not in meta:
        raise ValueError(f"{path}: no ferronet.spec in the header: not a ferronet model file")
    spec = json.loads(meta["ferronet.spec"])
    model = FerronetModule(spec).eval()
    with torch.no_grad():
        model(*[torch.zeros(1, *i["shape"]) for i in spec["inputs"]])
    tie(model)
    model.load_state_dict(safetensors.torch.load_file(path), strict=True)
    return model
