// train.py of an exported job (job.ts writes it), kept as Python so a user reads and edits it in the job folder.
// It reads job.json and data/ and writes a LoRA+ Studio run folder; files.ts says how it is launched. Its second
// half (the step, eval, checkpoints, main) is in train-py-loop.ts.
import { TRAIN_PY_LOOP } from './train-py-loop';

const TRAIN_PY_SETUP = String.raw`"""LoRA+ Studio job from "loraplus export": transformers + PEFT + accelerate.

Reads job.json (settings) and data/ (examples tokenized and ordered by LoRA+ Studio), trains with PEFT's own
optimizer functions, and writes a LoRA+ Studio run folder from rank 0: metrics.jsonl, checkpoints/, final/.
Run it through launch.sh (accelerate launch); --resume continues from the run's latest checkpoint.
"""
import argparse
import datetime
import json
import math
import os
import shutil
import signal
import time
import traceback

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from peft.optimizers import create_loraplus_optimizer, create_lorafa_optimizer, create_riemannian_optimizer
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, get_scheduler

HERE = os.path.dirname(os.path.abspath(__file__))
JOB = json.load(open(os.path.join(HERE, "job.json")))
T = JOB["training"]
STOP = []  # signals received: the loop checkpoints and ends "stopped" (torchrun sends SIGTERM to every rank)
PAD_TO = 8  # our engine pads batches to a multiple of 8; masked, so it changes nothing but keeps shapes alike


def read_jsonl(name):
    with open(os.path.join(HERE, "data", name)) as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- run folder and events (rank 0 writes) -----------------------------------------------------------------------
class Run:
    def __init__(self, acc, run_dir):
        self.acc, self.dir, self.started = acc, run_dir, time.time()
        self.elapsed_before = 0.0
        self.step, self.last = 0, None  # how far it got, for an error event
        if acc.is_main_process:
            os.makedirs(run_dir, exist_ok=True)
            shutil.copyfile(os.path.join(HERE, "config.yaml"), os.path.join(run_dir, "config.yaml"))

    def elapsed(self):
        return self.elapsed_before + time.time() - self.started

    def emit(self, event):
        if self.acc.is_main_process:
            with open(os.path.join(self.dir, "metrics.jsonl"), "a") as f:
                f.write(json.dumps(event) + "\n")
            print(json.dumps(event), flush=True)


# ---- model, adapter, optimizer -----------------------------------------------------------------------------------
def build_model():
    torch.manual_seed(T["seed"])
    if JOB["task"] == "sequence-classification":
        model = AutoModelForSequenceClassification.from_pretrained(
            JOB["model"], num_labels=len(JOB["labels"]), dtype=torch.float32
        )
        model.config.pad_token_id = JOB["pad_id"]
    else:
        model = AutoModelForCausalLM.from_pretrained(JOB["model"], dtype=torch.float32)
    lo = JOB["lora"]
    config = LoraConfig(
        r=lo["r"],
        lora_alpha=lo["lora_alpha"],
        lora_dropout=lo["lora_dropout"],
        use_rslora=lo["use_rslora"],
        target_modules=lo["target_modules"],
        modules_to_save=lo["modules_to_save"],
        task_type=lo["task_type"],
    )
    model = get_peft_model(model, config)
    if lo["init_adapter"]:
        result = set_peft_model_state_dict(model, load_file(os.path.join(HERE, lo["init_adapter"])))
        missing = [k for k in result.unexpected_keys]
        if missing:
            raise ValueError(f"init adapter keys the model does not have: {missing[:3]}")
    return model


def create_optimizer(model):
    lo, opt = JOB["lora"], T["optimizer"]
    betas, eps = (T["adam_beta1"], T["adam_beta2"]), T["adam_epsilon"]
    if opt == "riemannian":
        return create_riemannian_optimizer(
            model, torch.optim.AdamW, lr=T["learning_rate"], reg=T["reg"],
            weight_decay=T["weight_decay"], betas=betas, eps=eps,
        )
    if opt == "lorafa":
        return create_lorafa_optimizer(
            model, r=lo["r"], lora_alpha=lo["lora_alpha"], lr=T["learning_rate"],
            weight_decay=T["weight_decay"], use_rslora=lo["use_rslora"],
        )
    return create_loraplus_optimizer(
        model, optimizer_cls=torch.optim.AdamW, lr=T["learning_rate"], loraplus_lr_ratio=T["loraplus_lr_ratio"],
        loraplus_lr_embedding=T["loraplus_lr_embedding"], weight_decay=T["weight_decay"], betas=betas, eps=eps,
    )


def our_name(peft_name):
    """base_model.model.X.lora_A.default.weight -> X.lora_A.weight (our and PEFT's file names)."""
    name = peft_name.removeprefix("base_model.model.")
    return name.replace(".default.", ".").replace(".modules_to_save.", ".")


def group_infos(model, optimizer):
    """Our groups (names, peak lr, params) and the param_groups index of each: PEFT's LoRA+ order is A, embedding, B,
    B_no_decay; the one-rate optimizers (one param group) are shown split into A and B."""
    names = {id(p): our_name(n) for n, p in model.named_parameters()}
    if T["optimizer"] == "adamw":
        labelled = zip(["A", "embedding", "B", "B_no_decay"], optimizer.param_groups)
        groups = [(label, i, [names[id(p)] for p in g["params"]]) for i, (label, g) in enumerate(labelled)]
    else:
        params = [names[id(p)] for p in optimizer.param_groups[0]["params"]]
        groups = [("A", 0, [p for p in params if "lora_B" not in p]), ("B", 0, [p for p in params if "lora_B" in p])]
    pg = optimizer.param_groups
    infos = [{"name": label, "lr": pg[i]["lr"], "weight_decay": pg[i]["weight_decay"], "params": params}
             for label, i, params in groups if params]
    return infos, [i for _, i, params in groups if params]


def lora_pairs(model):
    """module name -> (A, B, scaling): the tensors the A/B figures are about."""
    pairs = {}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            key = name.removeprefix("base_model.model.")
            pairs[key] = (module.lora_A["default"].weight, module.lora_B["default"].weight, module.scaling["default"])
    return pairs


# ---- batches and loss ---------------------------------------------------------------------------------------------
def collate(rows, device):
    seq = max(len(r["input_ids"]) for r in rows)
    seq = -(-seq // PAD_TO) * PAD_TO
    pad = lambda xs, v: [x + [v] * (seq - len(x)) for x in xs]
    batch = {"input_ids": pad([r["input_ids"] for r in rows], JOB["pad_id"])}
    if "position_ids" in rows[0]:
        # Packed blocks: no attention mask, positions restarting per example (transformers then keeps the examples
        # apart); the padding after a block is one more sequence of its own, and carries no loss.
        batch["position_ids"] = [r["position_ids"] + list(range(seq - len(r["position_ids"]))) for r in rows]
    else:
        batch["attention_mask"] = pad([r["attention_mask"] for r in rows], 0)
    if "token_type_ids" in rows[0]:
        batch["token_type_ids"] = pad([r["token_type_ids"] for r in rows], 0)
    if JOB["task"] == "sequence-classification":
        batch["labels"] = [r["labels"] for r in rows]
    else:
        batch["labels"] = pad([r["labels"] for r in rows], -100)
    return {k: torch.tensor(v, device=device) for k, v in batch.items()}


def targets(rows):
    """What a loss is a mean over: examples (classification) or the predicted tokens (labels[1:] != -100)."""
    if JOB["task"] == "sequence-classification":
        return len(rows)
    return sum(sum(1 for x in r["labels"][1:] if x != -100) for r in rows)


def loss_sum(model, batch):
    """Summed cross-entropy (transformers' ForCausalLMLoss before its division) and the number correct."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if "position_ids" in inputs:
        inputs["use_cache"] = False  # transformers keeps packed examples apart only without a cache
    logits = model(**inputs).logits.float()
    labels = batch["labels"]
    if JOB["task"] != "sequence-classification":
        logits, labels = logits[:, :-1], labels[:, 1:]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum")
    correct = ((logits.argmax(-1) == labels) & (labels != -100)).sum()
    return loss, correct


def shard(rows, acc):
    """This rank's contiguous slice of a global micro-batch (an epoch's last one may leave a rank none)."""
    n, w = len(rows), acc.num_processes
    return rows[acc.process_index * n // w:(acc.process_index + 1) * n // w]

`;

export const TRAIN_PY = `${TRAIN_PY_SETUP}\n${TRAIN_PY_LOOP}`;
