#!/usr/bin/env python3
"""The PyTorch side of `npm run bench`: the same LoRA+ training step as the engine, in plain torch.

A Llama forward (RMSNorm, RoPE with rotate_half, grouped-query attention, SiLU-gated MLP, tied LM head, mean
next-token cross-entropy), frozen base weights, LoRA r=8 (alpha 16) on q/k/v/o, and AdamW with LoRA+ groups
(lora_A at lr, lora_B at lr * 16). One step = forward, backward, optimizer step, zero_grad, loss.item().

Prints one line: `BENCH_RESULT {json}` with tokens/s (median step), step ms and peak RSS.
Threads: torch.set_num_threads(n); the caller also sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS = n and
OMP_WAIT_POLICY=PASSIVE (without it OpenMP's spinning threads fight OpenBLAS's).
bench/torch_gpt2_bert_lora.py (the GPT-2 and BERT rows) imports Linear, bench_args and measure from here.
"""
import argparse
import json
import math
import os
import re
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F

GPT2_SMALL = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  num_key_value_heads=12, vocab_size=50257, rms_norm_eps=1e-5, rope_theta=10000.0,
                  tie_word_embeddings=True)
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
IMPL = {m: "plain torch (bench/torch_llama_lora.py)" for m in ("stories260k", "gpt2-small")}
IMPL.update({m: "plain torch (bench/torch_gpt2_bert_lora.py)" for m in ("gpt2", "bert-base")})


# ---- weights --------------------------------------------------------------------------------------------------------

def read_safetensors(path):
    """model.safetensors → {name: float32 tensor}, with json + struct + torch.frombuffer (no safetensors package)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = bytearray(data[8 + n:])  # writable, so frombuffer does not warn
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        dt = dtypes[e["dtype"]]
        count = math.prod(e["shape"]) if e["shape"] else 1
        t = torch.frombuffer(body, dtype=dt, count=count, offset=begin) if count else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).to(torch.float32).clone()
    return {("model." + k if k.split(".")[0] in ("embed_tokens", "layers", "norm") else k): v for k, v in out.items()}


def random_weights(c, gen):
    """N(0, 0.02) for every matrix, ones for the norms (HF's _init_weights)."""
    h, i, hd = c["hidden_size"], c["intermediate_size"], c["hidden_size"] // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    randn = lambda *shape: torch.randn(*shape, generator=gen) * 0.02
    w = {"model.embed_tokens.weight": randn(c["vocab_size"], h), "model.norm.weight": torch.ones(h)}
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}"
        w[f"{p}.input_layernorm.weight"] = torch.ones(h)
        w[f"{p}.post_attention_layernorm.weight"] = torch.ones(h)
        for name, shape in (("self_attn.q_proj", (q, h)), ("self_attn.k_proj", (kv, h)), ("self_attn.v_proj", (kv, h)),
                            ("self_attn.o_proj", (h, q)), ("mlp.gate_proj", (i, h)), ("mlp.up_proj", (i, h)),
                            ("mlp.down_proj", (h, i))):
            w[f"{p}.{name}.weight"] = randn(*shape)
    return w


# ---- the model ------------------------------------------------------------------------------------------------------

class Linear(torch.nn.Module):
    """A frozen nn.Linear, with a LoRA pair when `r` is set: y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ."""

    def __init__(self, weight, r=0, alpha=0, gen=None, bias=None):
        super().__init__()
        self.register_buffer("weight", weight)  # frozen: a buffer, never a parameter
        self.register_buffer("bias", bias)
        self.r = r
        if r:
            out_f, in_f = weight.shape
            bound = 1 / math.sqrt(in_f)  # PEFT: kaiming_uniform(a=√5) → U(-1/√in, 1/√in); B = 0
            self.lora_A = torch.nn.Parameter((torch.rand(r, in_f, generator=gen) * 2 - 1) * bound)
            self.lora_B = torch.nn.Parameter(torch.zeros(out_f, r))
            self.scaling = alpha / r

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        if self.r:
            y = y + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling
        return y


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Llama(torch.nn.Module):
    def __init__(self, c, w, r, alpha, gen):
        super().__init__()
        self.c = c
        self.nh, self.nkv = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = c.get("head_dim") or c["hidden_size"] // self.nh
        self.eps = c["rms_norm_eps"]
        self.register_buffer("embed", w["model.embed_tokens.weight"])
        self.register_buffer("norm", w["model.norm.weight"])
        self.layers = torch.nn.ModuleList()
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}"
            layer = torch.nn.Module()
            layer.register_buffer("ln1", w[f"{p}.input_layernorm.weight"])
            layer.register_buffer("ln2", w[f"{p}.post_attention_layernorm.weight"])
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                setattr(layer, n, Linear(w[f"{p}.self_attn.{n}.weight"], *((r, alpha, gen) if n in TARGETS else ())))
            for n in ("gate_proj", "up_proj", "down_proj"):
                setattr(layer, n, Linear(w[f"{p}.mlp.{n}.weight"]))
            self.layers.append(layer)
        self.head = self.embed if c.get("tie_word_embeddings") else w["lm_head.weight"]
        inv_freq = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        self.register_buffer("inv_freq", inv_freq)

    def attention(self, L, x, cos, sin, mask):
        b, t, _ = x.shape
        q = L.q_proj(x).view(b, t, self.nh, self.hd).transpose(1, 2)  # [B, nh, T, hd]
        k = L.k_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = L.v_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv  # grouped-query attention: HF's repeat_kv
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd) + mask
        out = torch.softmax(att, dim=-1) @ v  # [B, nh, T, hd]
        return L.o_proj(out.transpose(1, 2).reshape(b, t, self.nh * self.hd))

    def loss(self, ids):
        b, t = ids.shape
        pos = torch.arange(t, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()  # [T, hd]
        mask = torch.full((t, t), float("-inf")).triu(1)  # causal
        x = F.embedding(ids, self.embed)
        for L in self.layers:
            x = x + self.attention(L, rms_norm(x, L.ln1, self.eps), cos, sin, mask)
            h = rms_norm(x, L.ln2, self.eps)
            x = x + L.down_proj(F.silu(L.gate_proj(h)) * L.up_proj(h))
        x = rms_norm(x, self.norm, self.eps)
        logits = F.linear(x[:, :-1], self.head)  # tied head
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


# ---- measuring ------------------------------------------------------------------------------------------------------

def system_busy_s():
    """CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes():
    """This process's peak RSS: VmHWM (the kernel's high-water mark of this address space), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def blas_library():
    """The BLAS torch's own matmuls run on, as torch says it: the BLAS_INFO its build records (torch.__config__.show())
    and torch.backends.mkl; for a build on the system's generic libblas.so.3 (Debian's python3-torch), the library
    that name resolves to in this process. pip's x86 wheels link MKL statically, so no MKL file shows in the process's
    maps, while numpy's own bundled OpenBLAS (libscipy_openblas*, loaded when torch imports numpy) does: reading any
    "openblas" in /proc/self/maps labelled the MKL build OpenBLAS. Libraries of other packages are not counted."""
    config = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([\w-]+)", config)
    info = m.group(1).lower() if m else ""
    if info == "mkl" or (not info and torch.backends.mkl.is_available()):
        v = re.search(r"Math Kernel Library Version ([\d.]+)", config)
        return "MKL" + (" " + v.group(1) if v else "")
    libs = [lib for lib in mapped_libraries() if not re.search(r"numpy|scipy|site-packages/(?!torch)", lib)]
    blas = [lib for lib in libs if re.search(r"/lib(open)?blas[^/]*\.so|/libmkl|/libblis|/libatlas", lib)]
    names = " ".join(blas).lower()
    if "openblas" in names:
        variant = next((v for v in ("pthread", "openmp", "serial") if "openblas-" + v in names), "")
        label = "OpenBLAS" + (" " + variant if variant else "")
    elif "mkl" in names:
        label = "MKL"
    elif "blis" in names:
        label = "BLIS"
    elif "atlas" in names:
        label = "ATLAS"
    elif "/blas/libblas" in names:
        label = "reference BLAS (netlib)"
    elif info in ("open", "openblas"):
        label = "OpenBLAS"
    else:
        label = "BLAS " + (", ".join(os.path.basename(p) for p in blas) or "unknown")
    return label + (f" (BLAS_INFO={info})" if info and info not in ("open", "openblas") else "")


def mapped_libraries():
    """Real paths of the shared libraries this process has loaded."""
    try:
        with open("/proc/self/maps") as f:
            return sorted({os.path.realpath(line.split()[-1]) for line in f if ".so" in line})
    except OSError:
        return []


def bench_args(description, models):
    """The options every PyTorch bench script takes (torch.ts passes them)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--model", choices=models, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, help="timed steps (default: as many as fit --budget seconds, at least 3)")
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--ratio", type=float, default=16, help="LoRA+ lr ratio: lora_B learns at lr·ratio")
    return ap


def measure(a, model, loss_fn, setup_s, opt=None, impl=None):
    """LoRA+ AdamW over the model's parameters (as the engine's loraplusGroups: lora_B and 1-D tensors at lr·ratio,
    the rest, lora_A and a fully trained head's matrix, at lr) unless `opt` is given, warm-up steps, then timed steps;
    prints the result. One step = forward, backward, optimizer step, zero_grad, loss.item()."""
    if opt is None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        fast = [p for n, p in named if "lora_B" in n or p.dim() == 1]
        slow = [p for n, p in named if not ("lora_B" in n or p.dim() == 1)]
        opt = torch.optim.AdamW([{"params": slow, "lr": a.lr}, {"params": fast, "lr": a.lr * a.ratio}],
                                betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    def step():
        loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    loss = float("nan")
    for _ in range(a.warmup):
        loss = step()
    times = []
    cpu0, busy0, wall0 = time.process_time(), system_busy_s(), time.perf_counter()
    while (len(times) < a.steps) if a.steps else (len(times) < 3 or (len(times) < 20 and time.perf_counter() - wall0 < a.budget)):
        s = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - s) * 1000)
    own, busy1, wall = time.process_time() - cpu0, system_busy_s(), time.perf_counter() - wall0
    other = None if busy0 is None or busy1 is None else round(max(0.0, busy1 - busy0 - own) / wall, 2)
    med = sorted(times)[len(times) // 2] if len(times) % 2 else sum(sorted(times)[len(times) // 2 - 1:len(times) // 2 + 1]) / 2
    r1 = lambda x: round(x, 1)
    result = dict(side="torch", model=a.model, backend="pytorch", device=f"CPU, torch {torch.__version__}, {blas_library()}",
                  threads=torch.get_num_threads(), batch=a.batch, seq=a.seq, warmup=a.warmup, steps=len(times),
                  stepMs=[r1(t) for t in times], medianMs=r1(med), tokensPerS=r1(a.batch * a.seq / (med / 1000)),
                  peakRssMB=r1(peak_rss_bytes() / 2**20),
                  maxrssMB=r1(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  tfMemoryMB=None, numTensors=None, cpuUtil=round(own / wall, 2), otherCpu=other, loss=loss, setupS=r1(setup_s),
                  python=sys.executable, impl=impl or IMPL.get(a.model, "plain torch"))
    sys.stdout.write("BENCH_RESULT " + json.dumps(result) + "\n")


def main():
    ap = bench_args(__doc__.split("\n")[0], ["stories260k", "gpt2-small"])
    ap.add_argument("--model-dir", help="the stories260k folder (config.json, model.safetensors)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(1234)
    t0 = time.perf_counter()
    if a.model == "stories260k":
        with open(os.path.join(a.model_dir, "config.json")) as f:
            c = json.load(f)
        w = read_safetensors(os.path.join(a.model_dir, "model.safetensors"))
    else:
        c = dict(GPT2_SMALL)
        w = random_weights(c, gen)
    model = Llama(c, w, a.r, a.alpha, gen)
    del w
    ids = torch.randint(0, c["vocab_size"], (a.batch, a.seq), generator=gen)
    measure(a, model, lambda: model.loss(ids), time.perf_counter() - t0)


if __name__ == "__main__":
    main()
