"""PyTorch reference for examples/gpt-fortunes.ts: the same character-level GPT on the
same text, split and optimizer, for the validation-loss and ms-per-step comparison.

Model (nanoGPT's CPU configuration): token embedding [V, 128] tied to the output
projection, learned positions [64, 128], 4 pre-LayerNorm blocks of causal 4-head
self-attention (F.scaled_dot_product_attention: PyTorch's fastest path) and a
4×128 GELU MLP, a final LayerNorm. Init normal(0, 0.02), residual projections
0.02/sqrt(2·layers), biases 0 (nanoGPT's _init_weights). AdamW lr 1e-3, betas
(0.9, 0.99), weight decay 0.1 on every tensor, gradient clipping at norm 1.0,
batch 12 windows of 64 characters at random offsets. Validation loss: mean over 20
batches of 12 windows spread evenly over the held-out last 10%, the same windows as
examples/gpt-fortunes.ts (text.evenWindows).

    python bench/torch/gpt_fortunes.py --steps 2000 --threads 2 --json
"""

import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FORTUNES = "/usr/share/games/fortunes"


def load_text(folder):
    parts = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if "." in name or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            parts.append(f.read().decode("latin1"))
    return "".join(parts)


class Block(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.ln2 = nn.LayerNorm(c)
        self.fc = nn.Linear(c, 4 * c)
        self.out = nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        shape = (b, t, self.heads, c // self.heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch 1.13 (Debian): the same attention written out
            att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            mask = torch.ones(t, t, dtype=torch.bool).triu(1)
            y = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, context, c, layers, heads):
        super().__init__()
        self.wte = nn.Embedding(vocab, c)
        self.wpe = nn.Embedding(context, c)
        self.blocks = nn.ModuleList([Block(c, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(c)
        self.head = nn.Linear(c, vocab, bias=False)
        self.head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln" in name:
                nn.init.ones_(p)
            elif name.endswith("proj.weight") or name.endswith("out.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-batches", type=int, default=20)
    ap.add_argument("--gen-tokens", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    text = load_text(FORTUNES)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(len(ids) * 0.9)
    train, val = ids[:n], ids[n:]
    B, T, C, L, H = 12, 64, 128, 4, 4
    model = GPT(len(chars), T, C, L, H)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    g = torch.Generator().manual_seed(a.seed)

    def batch(data, gen):
        ix = torch.randint(len(data) - T, (B,), generator=gen)
        x = torch.stack([data[i : i + T] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + T] for i in ix])
        return x, y

    # The validation windows of examples/gpt-fortunes.ts (text.evenWindows): window k of
    # count starts at floor(k·(n − T − 1)/(count − 1)), in batches of B.
    count = a.eval_batches * B
    starts = [(k * (len(val) - T - 1)) // (count - 1) for k in range(count)]
    val_batches = []
    for b in range(a.eval_batches):
        s = starts[b * B : (b + 1) * B]
        val_batches.append((torch.stack([val[i : i + T] for i in s]), torch.stack([val[i + 1 : i + 1 + T] for i in s])))

    def val_loss():
        model.eval()
        with torch.no_grad():
            losses = [F.cross_entropy(model(x).view(-1, len(chars)), y.view(-1)).item() for x, y in val_batches]
        model.train()
        return sum(losses) / len(losses)

    evals, step_ms = [], []
    for step in range(1, a.steps + 1):
        x, y = batch(train, g)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x).view(-1, len(chars)), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step_ms.append((time.perf_counter() - t0) * 1000)
        if step % a.eval_every == 0 or step == a.steps:
            evals.append({"step": step, "trainLoss": loss.item(), "valLoss": val_loss()})
            if not a.json:
                print(evals[-1], flush=True)
    # Generation: 200 new tokens from a one-character prompt, context cropped to T.
    model.eval()
    idx = torch.tensor([[stoi["\n"]]])
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(a.gen_tokens):
            logits = model(idx[:, -T:])[:, -1, :] / 0.8
            v, _ = torch.topk(logits, 20)
            logits[logits < v[:, [-1]]] = -float("inf")
            idx = torch.cat([idx, torch.multinomial(F.softmax(logits, dim=-1), 1)], dim=1)
    gen_s = time.perf_counter() - t0
    sample = "".join(chars[i] for i in idx[0].tolist())
    out = {
        "framework": f"pytorch {torch.__version__}",
        "threads": a.threads,
        "steps": a.steps,
        "evals": evals,
        "valLoss": evals[-1]["valLoss"],
        "msPerStep": statistics.median(step_ms[min(10, len(step_ms) - 1):]),
        "tokensPerSecond": a.gen_tokens / gen_s,
        "sample": sample,
        "vocab": len(chars),
        "params": sum(p.numel() for p in model.parameters()),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
