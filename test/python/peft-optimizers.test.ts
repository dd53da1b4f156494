// Our riemannian and lorafa optimizers against PEFT's own, step by step, where the stories260k references do not
// reach: weight decay (lorafa's after the update), a modules_to_save head with a 1-D bias, a scaling whose 1/s² is
// not a power of two (lorafa's bf16 product), reg ≠ 1e-2. The same weights and gradients go into
// create_riemannian_optimizer / create_lorafa_optimizer on a tiny PeftModel; the weights after three steps must agree.
// Runs when a Python with torch and peft is here (CI installs them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { LoraModule } from '../../src/adapters/lora';
import type { TrainConfig } from '../../src/config/schema';
import type { Trainable } from '../../src/engine/train/optimizer';
import { createOptimizer } from '../../src/engine/train/peft-optimizers';
import { noPython, pythonWith, runPython } from '../helpers/python';
import { maxAbsDiff, tempDir, useBackend } from '../helpers/shared';

const MODULES = ['torch', 'peft'];
const python = pythonWith(MODULES);

// A Linear(8 → 6) with LoRA r 4, α 6 (scaling 1.5) and a head Linear(6 → 3) in modules_to_save; the weights and the
// gradients of each step from the JSON; prints the trained tensors by our names.
const PEFT_STEPS = `
import json, sys, torch
from peft import LoraConfig, get_peft_model
from peft.optimizers import create_lorafa_optimizer, create_riemannian_optimizer
case = json.load(open(sys.argv[1]))
class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 6)
        self.head = torch.nn.Linear(6, 3)
model = get_peft_model(Toy(), LoraConfig(r=4, lora_alpha=6, target_modules=["lin"], modules_to_save=["head"]))
ours = {
    "lin.lora_A.weight": "base_model.model.lin.lora_A.default.weight",
    "lin.lora_B.weight": "base_model.model.lin.lora_B.default.weight",
    "head.weight": "base_model.model.head.modules_to_save.default.weight",
    "head.bias": "base_model.model.head.modules_to_save.default.bias",
}
params = dict(model.named_parameters())
with torch.no_grad():
    for name, value in case["init"].items():
        params[ours[name]].copy_(torch.tensor(value).reshape(params[ours[name]].shape))
t = case["training"]
if case["optimizer"] == "riemannian":
    opt = create_riemannian_optimizer(model, torch.optim.AdamW, lr=t["lr"], reg=t["reg"],
                                      weight_decay=t["weight_decay"], betas=(0.9, 0.999), eps=1e-8)
else:
    opt = create_lorafa_optimizer(model, r=4, lora_alpha=6, lr=t["lr"], weight_decay=t["weight_decay"])
for grads in case["grads"]:
    for name, value in grads.items():
        p = params[ours[name]]
        if p.requires_grad:
            p.grad = torch.tensor(value).reshape(p.shape)
    opt.step()
    opt.zero_grad()
print(json.dumps({name: params[peft].detach().flatten().tolist() for name, peft in ours.items()}))
`;

const SHAPES: Record<string, [number, number] | [number]> = {
  'lin.lora_A.weight': [4, 8],
  'lin.lora_B.weight': [6, 4],
  'head.weight': [3, 6],
  'head.bias': [3],
};

/** Seeded values in [-scale, scale). */
function numbers(n: number, seed: number, scale: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 2 * scale);
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Our optimizer on the same case: the trained tensors by name. */
async function ours(optimizer: 'riemannian' | 'lorafa', c: Case): Promise<Record<string, number[]>> {
  const t = (name: string) => tf.tensor(c.init[name], SHAPES[name]);
  const lora = new LoraModule(
    'lin',
    t('lin.lora_A.weight') as tf.Tensor2D,
    t('lin.lora_B.weight') as tf.Tensor2D,
    1.5,
    0,
  );
  const head = ['head.weight', 'head.bias'].map((name) => ({ name, variable: tf.variable(t(name)), embedding: false }));
  const params: Trainable[] = [
    { name: 'lin.lora_A.weight', variable: lora.A, embedding: false },
    { name: 'lin.lora_B.weight', variable: lora.B, embedding: false },
    ...head,
  ];
  const training = {
    optimizer,
    optimizer_args: { reg: c.training.reg },
    learning_rate: c.training.lr,
    weight_decay: c.training.weight_decay,
    adam_beta1: 0.9,
    adam_beta2: 0.999,
    adam_epsilon: 1e-8,
  } as TrainConfig['training'];
  const opt = createOptimizer(training, params, [lora]);
  for (const step of c.grads) {
    const grads = new Map(Object.entries(step).map(([name, g]) => [name, tf.tensor(g, SHAPES[name])]));
    const used = await opt.prepare(grads);
    tf.dispose([...opt.step(used, 1).values()]);
    tf.dispose([...new Set([...grads.values(), ...used.values()])]);
  }
  const out = Object.fromEntries(await Promise.all(params.map(async (p) => [p.name, [...(await p.variable.data())]])));
  opt.dispose();
  lora.dispose();
  tf.dispose(head.map((h) => h.variable));
  return out;
}

interface Case {
  optimizer: string;
  training: { lr: number; reg: number; weight_decay: number };
  init: Record<string, number[]>;
  grads: Record<string, number[]>[];
}

describe("PEFT's riemannian and lorafa optimizers, step by step", { skip: python ? false : noPython(MODULES) }, () => {
  before(() => useBackend());

  for (const optimizer of ['riemannian', 'lorafa'] as const) {
    it(`${optimizer}: three steps with weight decay and a modules_to_save head follow PEFT's (≤ 1e-6)`, async () => {
      const names = Object.keys(SHAPES);
      const c: Case = {
        optimizer,
        training: { lr: 1e-2, reg: 0.05, weight_decay: 0.1 },
        init: Object.fromEntries(names.map((n, i) => [n, numbers(size(SHAPES[n]), 11 + i, 0.5)])),
        grads: [0, 1, 2].map((k) =>
          Object.fromEntries(names.map((n, i) => [n, numbers(size(SHAPES[n]), 101 + 10 * k + i, 0.1)])),
        ),
      };
      const file = path.join(tempDir(), 'case.json');
      fs.writeFileSync(file, JSON.stringify(c));
      const want = JSON.parse(runPython(python!, PEFT_STEPS, [file]).trim().split('\n').at(-1)!) as Record<
        string,
        number[]
      >;
      const got = await ours(optimizer, c);
      for (const name of names) {
        const moved = maxAbsDiff(want[name], c.init[name]);
        // (float32 rounding of the JSON's float64 values aside)
        if (optimizer === 'lorafa' && name.includes('lora_A')) assert.ok(moved < 1e-7, 'PEFT keeps lora_A frozen');
        else assert.ok(moved > 1e-3, `${name} trained in PEFT`);
        assert.ok(maxAbsDiff(got[name], want[name]) < 1e-6, `${name}: max |Δ| ${maxAbsDiff(got[name], want[name])}`);
      }
    });
  }
});
