#!/usr/bin/env python3
"""The PyTorch side of `npm run bench` for GPT-2-small and a BERT-base classifier: the engine's step, in plain torch.

gpt2: GPT-2's forward as transformers writes it (learned positions, pre-LN blocks, Conv1D projections y = x·W + b with
W [in, out], fused q,k,v `c_attn`, gelu_new, tied LM head, mean next-token cross-entropy), LoRA r=8 (alpha 16) on
c_attn. bert-base: BertForSequenceClassification (word + position + token-type embeddings, post-LN layers, exact
GELU, pooler + tanh, a fresh `classifier` trained in full), LoRA r=8 on query and value. Random weights (N(0, 0.02)
matrices, zero biases, unit LayerNorm weights), frozen as buffers; AdamW with the engine's LoRA+ groups (measure()).

Prints one line: `BENCH_RESULT {json}`; options, threads and measuring as bench/torch_llama_lora.py, whose helpers
this imports.
"""
import math
import time

import torch
import torch.nn.functional as F

from torch_llama_lora import Linear, bench_args, measure

GPT2 = dict(hidden=768, layers=12, heads=12, inner=3072, vocab=50257, positions=1024, eps=1e-5)
BERT = dict(hidden=768, layers=12, heads=12, inner=3072, vocab=30522, positions=512, types=2, eps=1e-12, labels=2)


class Conv1D(torch.nn.Module):
    """transformers' Conv1D, frozen: y = x·W + b with W [in, out] (torch.addmm, as transformers computes it), plus a
    LoRA pair when `r` is set (PEFT's fan_in_fan_out: lora_A [r, in], lora_B [out, r], as for a Linear)."""

    def __init__(self, in_f, out_f, randn, r=0, alpha=0, gen=None):
        super().__init__()
        self.register_buffer("weight", randn(in_f, out_f))
        self.register_buffer("bias", torch.zeros(out_f))
        self.r = r
        if r:
            bound = 1 / math.sqrt(in_f)
            self.lora_A = torch.nn.Parameter((torch.rand(r, in_f, generator=gen) * 2 - 1) * bound)
            self.lora_B = torch.nn.Parameter(torch.zeros(out_f, r))
            self.scaling = alpha / r

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)
        if self.r:
            y = y + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling
        return y


def layer_norm(h, eps):
    """A frozen LayerNorm's (weight, bias) and the function applying it."""
    w, b = torch.ones(h), torch.zeros(h)
    return lambda x: F.layer_norm(x, (h,), w, b, eps)


def attention(q, k, v, heads, mask):
    """softmax(q·kᵀ/√hd + mask)·v over heads; q, k, v [B, T, H] → [B, T, H]."""
    b, t, h = q.shape
    split = lambda y: y.view(b, t, heads, h // heads).transpose(1, 2)  # [B, nh, T, hd]
    att = split(q) @ split(k).transpose(-2, -1) / math.sqrt(h // heads)
    if mask is not None:
        att = att + mask
    return (torch.softmax(att, dim=-1) @ split(v)).transpose(1, 2).reshape(b, t, h)


class Gpt2(torch.nn.Module):
    def __init__(self, c, r, alpha, gen):
        super().__init__()
        h, randn = c["hidden"], lambda *shape: torch.randn(*shape, generator=gen) * 0.02
        self.c = c
        self.register_buffer("wte", randn(c["vocab"], h))  # tied: also the LM head
        self.register_buffer("wpe", randn(c["positions"], h))
        self.blocks = torch.nn.ModuleList()
        for _ in range(c["layers"]):
            blk = torch.nn.Module()
            blk.ln_1, blk.ln_2 = layer_norm(h, c["eps"]), layer_norm(h, c["eps"])
            blk.c_attn = Conv1D(h, 3 * h, randn, r, alpha, gen)
            blk.attn_proj = Conv1D(h, h, randn)
            blk.c_fc = Conv1D(h, c["inner"], randn)
            blk.mlp_proj = Conv1D(c["inner"], h, randn)
            self.blocks.append(blk)
        self.ln_f = layer_norm(h, c["eps"])

    def loss(self, ids):
        t = ids.shape[1]
        mask = torch.full((t, t), float("-inf")).triu(1)  # causal
        x = F.embedding(ids, self.wte) + self.wpe[:t]
        for blk in self.blocks:
            q, k, v = blk.c_attn(blk.ln_1(x)).split(self.c["hidden"], dim=2)
            x = x + blk.attn_proj(attention(q, k, v, self.c["heads"], mask))
            x = x + blk.mlp_proj(F.gelu(blk.c_fc(blk.ln_2(x)), approximate="tanh"))  # gelu_new
        logits = F.linear(self.ln_f(x)[:, :-1], self.wte)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


class Bert(torch.nn.Module):
    def __init__(self, c, r, alpha, gen):
        super().__init__()
        h, randn = c["hidden"], lambda *shape: torch.randn(*shape, generator=gen) * 0.02
        lin = lambda out_f, in_f, lora=False: Linear(randn(out_f, in_f), *((r, alpha, gen) if lora else (0, 0, None)), bias=torch.zeros(out_f))
        self.c = c
        self.register_buffer("word", randn(c["vocab"], h))
        self.register_buffer("position", randn(c["positions"], h))
        self.register_buffer("token_type", randn(c["types"], h))
        self.emb_ln = layer_norm(h, c["eps"])
        self.layers = torch.nn.ModuleList()
        for _ in range(c["layers"]):
            L = torch.nn.Module()
            L.query, L.key, L.value, L.out = lin(h, h, True), lin(h, h), lin(h, h, True), lin(h, h)
            L.up, L.down = lin(c["inner"], h), lin(h, c["inner"])
            L.ln_attn, L.ln_out = layer_norm(h, c["eps"]), layer_norm(h, c["eps"])
            self.layers.append(L)
        self.pooler = lin(h, h)  # bert-base-uncased's pooler: frozen, part of the base model
        self.classifier = torch.nn.Linear(h, c["labels"])  # fresh, trained in full (modules_to_save)
        with torch.no_grad():
            self.classifier.weight.copy_(randn(c["labels"], h))
            self.classifier.bias.zero_()

    def loss(self, ids, labels):
        t = ids.shape[1]
        x = self.emb_ln(F.embedding(ids, self.word) + self.position[:t] + self.token_type[0])
        for L in self.layers:  # no padding: the attention mask adds nothing
            x = L.ln_attn(x + L.out(attention(L.query(x), L.key(x), L.value(x), self.c["heads"], None)))
            x = L.ln_out(x + L.down(F.gelu(L.up(x))))
        logits = self.classifier(torch.tanh(self.pooler(x[:, 0])))
        return F.cross_entropy(logits, labels)


def main():
    a = bench_args(__doc__.split("\n")[0], ["gpt2", "bert-base"]).parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(1234)
    t0 = time.perf_counter()
    if a.model == "gpt2":
        model = Gpt2(GPT2, a.r, a.alpha, gen)
        ids = torch.randint(0, GPT2["vocab"], (a.batch, a.seq), generator=gen)
        loss_fn = lambda: model.loss(ids)
    else:
        model = Bert(BERT, a.r, a.alpha, gen)
        ids = torch.randint(0, BERT["vocab"], (a.batch, a.seq), generator=gen)
        labels = torch.randint(0, BERT["labels"], (a.batch,), generator=gen)
        loss_fn = lambda: model.loss(ids, labels)
    measure(a, model, loss_fn, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
