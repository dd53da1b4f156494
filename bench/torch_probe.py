#!/usr/bin/env python3
"""What the bench needs to know of one Python's PyTorch, as one line of JSON: its version and where it is installed,
the BLAS its matmuls use (blas_library: asked of torch itself), whether transformers and PEFT are there (the Qwen3
and Gemma 3 rows need them), and a float32 matmul's speed on one thread, with numpy's own BLAS beside it when numpy
has one of its own: pip's MKL build and Debian's OpenBLAS build differ, and MKL is said to be slow on AMD CPUs, so the
bench shows the figure rather than assume it."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch_llama_lora import blas_library  # noqa: E402

N = 1024


def gflops(matmul, a, b, seconds=1.0):
    matmul(a, b)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        matmul(a, b)
        n += 1
    return round(2 * N ** 3 * n / (time.perf_counter() - t0) / 1e9, 1)


def main():
    torch.set_num_threads(1)
    a, b = torch.randn(N, N), torch.randn(N, N)
    out = dict(python=sys.executable, version=torch.__version__, file=os.path.realpath(torch.__file__),
               blas=blas_library(), mkl=torch.backends.mkl.is_available(), gflops=gflops(torch.mm, a, b))
    out["install"] = "Debian" if "/dist-packages/" in out["file"] and out["file"].startswith("/usr/") else "pip"
    try:
        import peft
        import transformers
        out["hf"] = f"transformers {transformers.__version__}, PEFT {peft.__version__}"
    except ImportError:
        out["hf"] = None
    try:
        import numpy as np
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name = f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
        out["numpy"] = dict(blas=name, gflops=gflops(np.matmul, a.numpy(), b.numpy()))
    except Exception:  # an old numpy without mode="dicts", or none: the probe is optional
        out["numpy"] = None
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
