// The second half of train.py (train-py.ts): one optimizer step, eval, checkpoints, resume, the run.
export const TRAIN_PY_LOOP = String.raw`# ---- one optimizer step -------------------------------------------------------------------------------------------
def train_step(s, step, log_this):
    """Forward/backward over the micro-batches, clipping, PEFT's optimizer step; the step event's figures. The loss
    is our engine's: sft divides by the answer tokens of the whole accumulated batch (transformers'
    num_items_in_batch), the other tasks average the micro-batches' means."""
    acc, model, accum = s["acc"], s["model"], T["gradient_accumulation_steps"]
    t0 = time.time()
    micro = [[s["train"][i] for i in s["order"][step * accum + j]] for j in range(accum)]
    n = max(1, sum(targets(rows) for rows in micro))
    denoms = [n if JOB["task"] == "sft" else max(1, targets(rows)) * accum for rows in micro]
    total = torch.zeros((), device=acc.device)
    model.train()
    for j, rows in enumerate(micro):
        mine = shard(rows, acc)
        with acc.no_sync(model) if j < accum - 1 else nullcontext():
            loss, _ = loss_sum(model, collate(mine or rows[:1], acc.device))
            loss = loss if mine else loss * 0  # no rows here: a zero gradient, but DDP's all-reduce still meets
            acc.backward(loss * acc.num_processes / denoms[j])  # DDP averages the ranks: their sum / denominator
        total += loss.detach() / denoms[j]
    loss_value = acc.reduce(total, "sum").item()
    params = [p for p in model.parameters() if p.requires_grad]
    grad_norm = acc.clip_grad_norm_(params, T["max_grad_norm"] if T["max_grad_norm"] > 0 else float("inf"))
    if not math.isfinite(loss_value) or not math.isfinite(float(grad_norm)):
        raise FloatingPointError(f"the loss became {loss_value} (gradient norm {float(grad_norm)}) at step {step + 1}")
    lrs = [g["lr"] for g in s["optimizer"].param_groups]
    before = {m: (a.detach().clone(), b.detach().clone()) for m, (a, b, _) in s["pairs"].items()} if log_this else {}
    grads = {m: (norm(a.grad), norm(b.grad)) for m, (a, b, _) in s["pairs"].items()} if log_this else {}
    s["optimizer"].step()
    s["scheduler"].step()
    s["optimizer"].zero_grad(set_to_none=True)
    tokens = sum(len(r["input_ids"]) for rows in micro for r in rows)
    modules = [module_stats(m, before[m], grads[m], s["pairs"][m]) for m in before]
    return {"loss": loss_value, "grad_norm": float(grad_norm), "lrs": lrs, "tokens": tokens,
            "seconds": time.time() - t0, "modules": modules}


def norm(x):
    return 0.0 if x is None else float(x.detach().float().norm())


def module_stats(module, before, grads, pair):
    """‖∇A‖, ‖∇B‖ (clipped), ‖ΔA‖, ‖ΔB‖, and the output changes ‖s·B·ΔA‖, ‖s·ΔB·A‖ with the old A, B."""
    (a0, b0), (a, b, scaling) = before, pair
    with torch.no_grad():
        da, db = a.detach() - a0, b.detach() - b0
        out_a, out_b = float((b0 @ da).norm()) * scaling, float((db @ a0).norm()) * scaling
    return {"module": module, "grad_A": grads[0], "grad_B": grads[1], "delta_A": float(da.norm()),
            "delta_B": float(db.norm()), "out_A": out_a, "out_B": out_b}


class nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# ---- eval and checkpoints -----------------------------------------------------------------------------------------
def evaluate(s, step, run):
    """Loss over all eval targets (and accuracy or perplexity), each rank a share of the batches, then summed."""
    acc, rows, b = s["acc"], s["eval"], T["batch_size"]
    batches = [rows[i:i + b] for i in range(0, len(rows), b)][acc.process_index::acc.num_processes]
    sums = torch.zeros(3, dtype=torch.float64, device=acc.device)
    s["model"].eval()
    with torch.no_grad():
        for batch in batches:
            loss, correct = loss_sum(s["model"], collate(batch, acc.device))
            sums += torch.tensor([loss.item(), targets(batch), correct.item()], dtype=torch.float64, device=acc.device)
    total, count, correct = acc.reduce(sums, "sum").tolist()
    result = {"type": "eval", "step": step, "loss": total / max(1, count), "examples": len(rows)}
    if JOB["task"] == "sequence-classification":
        result["accuracy"] = correct / max(1, count)
    else:
        result["perplexity"] = math.exp(result["loss"])
    if JOB["task"] == "sft":
        result["token_accuracy"] = correct / max(1, count)
    run.emit({**result, "elapsed_s": run.elapsed()})


def save_adapter(s, folder, state):
    """A PEFT adapter folder (+ loraplus.json, and for checkpoints the optimizer and trainer state), atomically."""
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    s["acc"].unwrap_model(s["model"]).save_pretrained(tmp)
    with open(os.path.join(tmp, "loraplus.json"), "w") as f:
        json.dump(JOB["loraplus"], f, indent=2)
    if state is not None:
        torch.save({"optimizer": s["optimizer"].state_dict(), "scheduler": s["scheduler"].state_dict()},
                   os.path.join(tmp, "optimizer.pt"))
        with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
            json.dump(state, f, indent=2)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def checkpoint(s, step, run, tokens_seen):
    s["acc"].wait_for_everyone()
    if s["acc"].is_main_process:
        folder = os.path.join(run.dir, "checkpoints", f"step-{step}")
        state = {"step": step, "micro_step": step * T["gradient_accumulation_steps"], "total_steps": T["total_steps"],
                 "tokens_seen": tokens_seen, "elapsed_s": run.elapsed(), "best_eval": None}
        save_adapter(s, folder, state)
        run.emit({"type": "checkpoint", "step": step, "path": folder, "kind": "checkpoint"})
        prune(run.dir, folder)
    s["acc"].wait_for_everyone()
    return os.path.join(run.dir, "checkpoints", f"step-{step}")


def checkpoints(run_dir):
    root = os.path.join(run_dir, "checkpoints")
    names = os.listdir(root) if os.path.isdir(root) else []
    steps = [int(d[5:]) for d in names if d.startswith("step-") and d[5:].isdigit()]
    return [os.path.join(root, f"step-{n}") for n in sorted(steps)]


def prune(run_dir, keep):
    limit = T["save_total_limit"]
    old = [c for c in checkpoints(run_dir) if c != keep]
    for c in old[:max(0, len(old) + 1 - limit)] if limit else []:
        shutil.rmtree(c, ignore_errors=True)


def resume(s, run):
    """The latest checkpoint's adapter, optimizer and schedule; returns (step, tokens_seen)."""
    found = checkpoints(run.dir)
    if not found:
        raise FileNotFoundError(f"--resume: {run.dir} has no checkpoints/step-N to continue from")
    ck = found[-1]
    weights = load_file(os.path.join(ck, "adapter_model.safetensors"))
    set_peft_model_state_dict(s["acc"].unwrap_model(s["model"]), weights)
    saved = torch.load(os.path.join(ck, "optimizer.pt"), map_location="cpu", weights_only=False)
    s["optimizer"].load_state_dict(saved["optimizer"])
    s["scheduler"].load_state_dict(saved["scheduler"])
    state = json.load(open(os.path.join(ck, "trainer_state.json")))
    run.elapsed_before = state["elapsed_s"]
    return state["step"], state["tokens_seen"], ck


# ---- the run ------------------------------------------------------------------------------------------------------
def device_text(acc):
    """E.g. "PyTorch (2 × cuda, MULTI_GPU)", "PyTorch (1 × cpu)": what the dashboard shows as the backend."""
    kind = acc.distributed_type.value
    return f"PyTorch ({acc.num_processes} × {acc.device.type}{'' if kind == 'NO' else ', ' + kind})"


def start_event(s, run, start_step):
    acc, model = s["acc"], s["acc"].unwrap_model(s["model"])
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    devices = [str(acc.device)]
    if acc.num_processes > 1:
        devices = acc.gather_for_metrics(devices, use_gather_object=True)
    scaling = next(iter(s["pairs"].values()))[2] if s["pairs"] else 0
    return {
        "type": "run_start", "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "run_name": os.path.basename(run.dir), "run_dir": run.dir, "backend": "torch",
        "device": device_text(acc),
        "threads": torch.get_num_threads(), "backend_notes": [], "model": JOB["model"], "model_type": JOB["model_type"],
        "task": JOB["task"], "total_steps": T["total_steps"], "start_step": start_step,
        "params": {"total": total, "trainable": trainable, "lora": lora},
        "lora": {"r": JOB["lora"]["r"], "lora_alpha": JOB["lora"]["lora_alpha"], "scaling": scaling,
                 "target_modules": list(s["pairs"]), "modules_to_save": JOB["lora"]["modules_to_save"] or []},
        "loraplus_lr_ratio": JOB["loraplus"]["loraplus_lr_ratio"], "optimizer": T["optimizer"],
        "optimizer_args": JOB["loraplus"]["optimizer_args"], "groups": s["groups"],
        "train_examples": len(s["train"]), "eval_examples": len(s["eval"]), "eval_every": T["eval_every"],
        "world_size": acc.num_processes, "devices": devices,
    }


def step_event(s, step, f, tokens_seen, run):
    lrs = {g["name"]: f["lrs"][i] for g, i in zip(s["groups"], s["group_index"])}
    return {"type": "step", "step": step, "epoch": step * T["gradient_accumulation_steps"] / JOB["batches_per_epoch"],
            "loss": f["loss"], "lr": lrs, "grad_norm": f["grad_norm"],
            "tokens_per_s": f["tokens"] / max(1e-3, f["seconds"]),
            "tokens_seen": tokens_seen, "elapsed_s": run.elapsed(), "modules": f["modules"]}


def setup(acc):
    model = build_model()
    optimizer = create_optimizer(model)
    groups, group_index = group_infos(model, optimizer)
    scheduler = get_scheduler(T["lr_scheduler"], optimizer, num_warmup_steps=T["warmup_steps"],
                              num_training_steps=T["total_steps"])
    pairs = lora_pairs(model)
    if acc.distributed_type.value == "FSDP":
        pairs = {}  # sharded flat parameters: no per-module A/B figures
    model, optimizer = acc.prepare(model, optimizer)
    return {"acc": acc, "model": model, "optimizer": optimizer, "scheduler": scheduler, "groups": groups,
            "group_index": group_index,
            "pairs": pairs, "train": read_jsonl("train.jsonl"),
            "order": json.load(open(os.path.join(HERE, "data", "order.json"))),
            "eval": read_jsonl("eval.jsonl") if os.path.exists(os.path.join(HERE, "data", "eval.jsonl")) else []}


def on_signal(signum, _frame):
    """The first signal stops after this step with a checkpoint; a second one (or one stuck in a collective) quits."""
    if STOP:
        os._exit(128 + signum)
    STOP.append(signum)


def stop_requested(acc):
    """Whether any rank was signalled; all ranks agree, so they stop at the same step (a dead rank fails here)."""
    flag = torch.tensor([float(len(STOP) > 0)], device=acc.device)
    return acc.reduce(flag, "sum").item() > 0


def loop(s, run, step, tokens_seen):
    due = lambda every: every > 0 and step % every == 0 and step < T["total_steps"]
    if step == 0 and s["eval"] and T["eval_every"] > 0:
        evaluate(s, step, run)
    last = run.last
    while step < T["total_steps"]:
        log_this = (step + 1) % T["log_every"] == 0 or step + 1 == T["total_steps"]
        f = train_step(s, step, log_this)
        step = run.step = step + 1
        tokens_seen += f["tokens"]
        if log_this:
            run.emit(step_event(s, step, f, tokens_seen, run))
        if due(T["eval_every"]) and s["eval"]:
            evaluate(s, step, run)
        if due(T["save_every"]):
            last = run.last = checkpoint(s, step, run, tokens_seen)
        if step < T["total_steps"] and stop_requested(s["acc"]):
            if not last or not last.endswith(f"step-{step}"):
                last = run.last = checkpoint(s, step, run, tokens_seen)
            return step, last, True
    return step, last, False


def main():
    ap = argparse.ArgumentParser(description="LoRA+ Studio job (run it with launch.sh)")
    ap.add_argument("--run-dir", default=JOB["run_dir"], help="where the run folder goes (relative: to this folder)")
    ap.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    args = ap.parse_args()
    acc = Accelerator()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    run_dir = os.path.join(HERE, args.run_dir)
    if not args.resume and os.path.exists(os.path.join(run_dir, "metrics.jsonl")):
        raise SystemExit(f"{run_dir} already holds a run: pass --resume to continue it, or --run-dir for a new one")
    acc.wait_for_everyone()
    run = Run(acc, os.path.abspath(run_dir))
    try:
        s = setup(acc)
        step, tokens_seen = 0, 0
        if args.resume:
            step, tokens_seen, run.last = resume(s, run)
            run.step = step
        run.emit(start_event(s, run, step))
        step, last, stopped = loop(s, run, step, tokens_seen)
        if stopped:
            run.emit({"type": "end", "status": "stopped", "step": step, "elapsed_s": run.elapsed(),
                      "final_adapter": None, "last_checkpoint": last})
            raise SystemExit(130)
        if s["eval"]:
            evaluate(s, step, run)
        final = os.path.join(run.dir, "final")
        acc.wait_for_everyone()
        if acc.is_main_process:
            save_adapter(s, final, None)
        run.emit({"type": "checkpoint", "step": step, "path": final, "kind": "final"})
        run.emit({"type": "end", "status": "finished", "step": step, "elapsed_s": run.elapsed(),
                  "final_adapter": final, "last_checkpoint": last})
        acc.end_training()
    except Exception as err:
        info = {"code": "torch/failed", "message": f"{type(err).__name__}: {err}",
                "hint": "The traceback is in the job's log; 'bash launch.sh ... --resume' continues from the last "
                        "checkpoint."}
        run.emit({"type": "error", "step": run.step, "error": info})
        run.emit({"type": "end", "status": "failed", "step": run.step, "elapsed_s": run.elapsed(),
                  "final_adapter": None, "last_checkpoint": run.last})
        traceback.print_exc()
        raise SystemExit(1)


if __name__ == "__main__":
    main()
`;
