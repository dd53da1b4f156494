#!/usr/bin/env python3
"""The PyTorch side of the bench's Qwen3 and Gemma 3 rows: transformers' own model classes with PEFT.

The model is built from the same config.json the engine's row uses (--config, JSON) with random weights
(AutoModelForCausalLM.from_config: transformers' _init_weights), in float32; LoRA r=8, alpha 16, dropout 0 on the
attention projections through PEFT's get_peft_model; the optimizer is PEFT's own create_loraplus_optimizer (AdamW,
lora_B at lr * ratio). The real classes rather than a hand-written copy: nothing to get subtly wrong (Gemma's sliding
window, (1 + w) norms, q/k norms), and it is what a PyTorch user would run. Attention is transformers' default
implementation (sdpa). Needs torch, transformers and peft; measuring is shared with bench/torch_llama_lora.py.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch_llama_lora import bench_args, measure  # noqa: E402


def main():
    ap = bench_args(__doc__.split("\n")[0], ["qwen3-0.6b", "gemma3-270m"])
    ap.add_argument("--config", required=True, help="the model's config.json, as JSON text")
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    a = ap.parse_args()

    import peft
    import transformers
    from peft import LoraConfig, get_peft_model
    from peft.optimizers import create_loraplus_optimizer
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    t0 = time.perf_counter()
    raw = json.loads(a.config)
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    config.use_cache = False  # training: no KV cache
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=0.0,
                                             target_modules=a.targets.split(",")))
    model.train()
    opt = create_loraplus_optimizer(model=model, optimizer_cls=torch.optim.AdamW, lr=a.lr, loraplus_lr_ratio=a.ratio,
                                    loraplus_lr_embedding=1e-6, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    gen = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, config.vocab_size, (a.batch, a.seq), generator=gen)
    base = model.get_base_model()
    impl = (f"transformers {transformers.__version__} {type(base).__name__} "
            f"({base.config._attn_implementation}) + PEFT {peft.__version__} LoRA, create_loraplus_optimizer")
    # labels = ids: the model shifts them, so the loss is the mean over the T-1 next tokens, as the engine's.
    measure(a, model, lambda: model(input_ids=ids, labels=ids).loss, time.perf_counter() - t0, opt=opt, impl=impl)


if __name__ == "__main__":
    main()
