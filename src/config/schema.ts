// The one description of a LoRA+ Studio config file. Everything else is derived from it: the `TrainConfig` type
// (mapped types below), the defaults, the validator (validate.ts), the JSON Schema (jsonschema.ts) and, later, the
// editor's completion and hover (docs.ts). Adding a key here updates all of them.

interface Common {
  description: string; // one sentence, shown on hover and in the JSON Schema
  // Markdown shown under the description on hover (the JSON Schema's markdownDescription): why, usual values
  docs?: string;
  // Required keys have no default: the value a quick fix or completion writes, for the user to edit.
  placeholder?: string;
  nullable?: boolean; // `null` is an accepted value (it always means "pick for me" / "none")
  required?: boolean; // no default: the user must write it
  aliases?: readonly string[]; // names people bring from Hugging Face / PEFT; only used for "did you mean"
}

/**
 * Numbers also accept strings that are valid JS numbers (`"2e-4"`), so a quoted or YAML-1.1-style value still works.
 */
export interface NumberSpec extends Common {
  kind: 'number' | 'integer';
  default?: number | null;
  min?: number;
  max?: number;
  exclusiveMin?: boolean; // `min` itself is not allowed
  exclusiveMax?: boolean;
  // Where the engine stops working (overflow, float32 underflow, memory, a run that never ends), inside the values
  // that mean something; `why` says what breaks, for the error and the hover. Both bounds are inclusive.
  limit?: { min?: number; max?: number; why: string };
  // The word `auto` is a value too: `loraplus tune` (and `train`, which tunes first) searches it (src/config/auto.ts).
  auto?: true;
}
export interface BooleanSpec extends Common {
  kind: 'boolean';
  default?: boolean | null;
}
export interface StringSpec extends Common {
  kind: 'string';
  default?: string | null;
  maxLength?: number;
  pattern?: { regex: string; what: string; hint?: string }; // `what`: the allowed values in words
}
/** A file or folder; relative values resolve against the config file's folder. */
export interface PathSpec extends Common {
  kind: 'path';
  default?: string | null;
  exists?: { type: 'file' | 'dir'; contains?: string; what: string }; // checked by the validator
  hub?: boolean; // a Hub id (org/name[@revision]) names a model in the Hugging Face cache
  names?: readonly string[]; // words that are values of their own, not paths (built-in chat templates)
}
export interface EnumSpec extends Common {
  kind: 'enum';
  values: readonly string[];
  default?: string | null;
}
/** A list of strings, or one of a few special words (`also`), e.g. target_modules: all-linear. */
export interface StringListSpec extends Common {
  kind: 'string-list';
  also?: readonly string[];
  minItems?: number; // items must also be unique
  default?: null;
}
/** A key that marks the file as a LoRA+ config (`loraplus: 1`); accepted, never part of `TrainConfig`. */
export interface MarkerSpec extends Common {
  kind: 'marker';
  value: number;
}
export interface ObjectSpec extends Common {
  kind: 'object';
  keys: Readonly<Record<string, Spec>>;
}
export type Spec =
  NumberSpec | BooleanSpec | StringSpec | PathSpec | EnumSpec | StringListSpec | MarkerSpec | ObjectSpec;
export type Kind = Spec['kind'];

// Limits shared by several keys (see NumberSpec.limit).
const STEPS_LIMIT = {
  max: 1e9,
  why:
    'A billion optimiser steps is years of training at any speed this engine reaches: a larger count is a slip ' +
    '(and past 2^53 JavaScript cannot count steps one by one).',
} as const;
const LR_MAX = 1;
const LR_MAX_WHY =
  'AdamW moves each weight by about the learning rate per step: at more than 1 the pretrained weights ' +
  '(about 0.02) are overwritten on the first step.';

export const schema = {
  kind: 'object',
  description: 'A LoRA+ Studio training run: which model, which data, the adapter, and how to train it.',
  keys: {
    loraplus: {
      kind: 'marker',
      value: 1,
      description: 'Marks this YAML file as a LoRA+ Studio config (format version 1); ignored by training.',
    },
    model: {
      kind: 'path',
      required: true,
      aliases: ['model_name_or_path', 'base_model', 'model_path'],
      exists: { type: 'dir', contains: 'config.json', what: 'model folder' },
      hub: true,
      placeholder: 'path/to/model-folder',
      description:
        'A Hugging Face model folder (config.json, model.safetensors, tokenizer.json), relative to this file, ' +
        'or a Hub id (org/name, optionally @revision) in the Hugging Face cache (loraplus download org/name).',
      docs:
        'A folder as downloaded from the Hub: `config.json` (its `model_type` picks the architecture: ' +
        'llama, mistral, qwen2, qwen3, gemma3_text, gemma3, phi3, gpt2, bert, roberta, distilbert), the weights as ' +
        '`model.safetensors` or shards ' +
        'listed in `model.safetensors.index.json`, and `tokenizer.json`. Run `loraplus info MODEL` to list the ' +
        'layers LoRA can target.',
    },
    task: {
      kind: 'enum',
      values: ['causal-lm', 'sequence-classification', 'sft'],
      default: 'causal-lm',
      aliases: ['task_type'],
      description:
        'causal-lm trains next-token prediction on text; sequence-classification trains a label head on text ' +
        '(pairs); sft is instruction tuning on conversations or prompt/completion rows, with loss on the answers ' +
        "(TRL's SFTTrainer).",
      docs:
        '`sft` reads chat data (`data.format`: messages, prompt_completion, alpaca, sharegpt, or text), renders it ' +
        "with the model's chat template (or `data.chat_template`) and trains only on the assistant's answers by " +
        'default (`data.assistant_only_loss`, `data.completion_only_loss`). ' +
        'Encoders (bert, roberta, distilbert) have no language-model head and only support ' +
        '`sequence-classification`. For classification a head missing from the checkpoint (`score`, `classifier`) ' +
        'is created fresh and trained in full (`lora.modules_to_save`).',
    },
    device: {
      kind: 'enum',
      values: ['auto', 'cuda', 'webgpu', 'wasm', 'cpu', 'torch'],
      default: 'auto',
      aliases: ['backend'],
      description:
        'TensorFlow.js backend; auto tries CUDA, then WebGPU, then wasm, then cpu. torch trains on PyTorch + PEFT + ' +
        'accelerate instead (the exported job, run with your Python; on CUDA when there is one).',
      docs:
        '`torch` runs the same run as `loraplus export --to accelerate` would write it, in a child process with the ' +
        "VS Code Python extension's interpreter (else LORAPLUS_PYTHON, else python3), which needs torch, " +
        'transformers, peft and accelerate. Its events stream into the same dashboard, and its run folder has the ' +
        'same layout. Tunes, chats and comparisons run on our engine (device auto).',
    },
    output_dir: {
      kind: 'path',
      default: 'runs',
      description:
        'Folder for runs (one sub-folder per run with checkpoints and the final adapter), relative to this file.',
    },
    run_name: {
      kind: 'string',
      nullable: true,
      default: null,
      maxLength: 100,
      // A folder name on every OS: no separators, no `..`, no control characters, not a command-line flag.
      pattern: {
        regex: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
        what: "a folder name of letters, digits, '.', '_' and '-' that starts with a letter or digit",
        hint: 'run_name names one folder inside output_dir; set output_dir to put runs somewhere else.',
      },
      description:
        'Name of the run folder inside output_dir; null names it after this file and its learning rates ' +
        '(e.g. sst2-cls-lr5e-4-ratio16, then -2, -3, … when taken).',
    },
    data: {
      kind: 'object',
      description: 'The training (and evaluation) data: JSONL, CSV or TSV files with one example per row.',
      keys: {
        train: {
          kind: 'path',
          required: true,
          aliases: ['train_file', 'dataset', 'train_data'],
          exists: { type: 'file', what: 'training data file' },
          placeholder: 'path/to/train.jsonl',
          description: 'The training data file (JSONL, CSV or TSV), relative to this file.',
          docs:
            '`.tsv` and `.csv` need a header row naming the columns; `.jsonl` holds one JSON object per line, ' +
            '`.json` one array of objects; `.txt` makes every non-empty line a row with the field `text`. ' +
            'Rows that already hold `input_ids` are used as they are.',
        },
        eval: {
          kind: 'path',
          nullable: true,
          default: null,
          aliases: ['validation_file', 'eval_file', 'validation'],
          exists: { type: 'file', what: 'evaluation data file' },
          description:
            'The evaluation data file; null uses eval_fraction of the training data (or no evaluation if that is 0).',
        },
        eval_fraction: {
          kind: 'number',
          min: 0,
          max: 0.5,
          default: 0,
          aliases: ['validation_split', 'val_split'],
          description: 'When eval is null, this fraction of the training rows is held out for evaluation (0 = none).',
        },
        text_field: {
          kind: 'string',
          default: 'text',
          aliases: ['text_column'],
          description: 'Column (JSONL field or CSV/TSV header) that holds the text.',
        },
        text_pair_field: {
          kind: 'string',
          nullable: true,
          default: null,
          description:
            'Column with the second text of a pair (sequence-classification, e.g. sentence2 for MRPC/RTE, ' +
            'hypothesis for MNLI); null for single texts.',
        },
        label_field: {
          kind: 'string',
          default: 'label',
          aliases: ['label_column'],
          description: 'Column that holds the class label (sequence-classification).',
        },
        labels: {
          kind: 'string-list',
          nullable: true,
          default: null,
          minItems: 2,
          aliases: ['label_names', 'classes'],
          description: 'The class names in label-id order; null collects them from the training data (sorted).',
        },
        max_length: {
          kind: 'integer',
          min: 2,
          limit: {
            max: 131072,
            why:
              'Attention holds max_length² scores per head and example; 2^17 = 131072 tokens is the longest ' +
              'context of current open models (Llama 3.1), and far more than this engine can hold in memory.',
          },
          default: 128,
          aliases: ['max_seq_length', 'seq_len', 'block_size'],
          description:
            'Examples are truncated to this many tokens, special tokens included; a pair loses tokens from its ' +
            "longer text first (Hugging Face's longest_first).",
          docs:
            'For `causal-lm` the text is concatenated and cut into blocks of exactly this many tokens (as ' +
            '`run_clm.py` does). It cannot exceed the positions the model was trained with ' +
            "(`max_position_embeddings`, GPT-2's `n_positions`); memory grows with it.",
        },
        format: {
          kind: 'enum',
          values: ['auto', 'messages', 'prompt_completion', 'alpaca', 'sharegpt', 'text'],
          default: 'auto',
          aliases: ['dataset_format'],
          description: "sft: the rows' format; auto detects it from the first row.",
          docs:
            '`messages`: {"messages": [{"role", "content"}, ...]} (OpenAI/TRL); `prompt_completion`: {"prompt", ' +
            '"completion"} as strings or lists of messages (TRL); `alpaca`: instruction, input, output (system, ' +
            'history), converted as LLaMA-Factory does; `sharegpt`: {"conversations": [{"from", "value"}, ...]}; ' +
            '`text`: plain text in `text_field`, trained on in full.',
        },
        chat_template: {
          kind: 'path',
          nullable: true,
          default: null,
          names: ['chatml', 'llama3', 'gemma', 'phi3', 'plain'],
          exists: { type: 'file', what: 'chat template file' },
          description:
            'sft: a .jinja file (relative to this file) or a built-in template (chatml, llama3, gemma, phi3, plain); ' +
            "null uses the model's own (tokenizer_config.json or chat_template.jinja).",
          docs:
            '`plain` is an instruction template for base models without chat tokens (### Instruction / ### ' +
            'Response, the answer ending with eos). The template renders `messages`, `add_generation_prompt` and the ' +
            "tokenizer's special tokens (`bos_token`, `eos_token`).",
        },
        assistant_only_loss: {
          kind: 'boolean',
          nullable: true,
          default: null,
          description:
            "sft: loss only on the assistant's turns of a conversation; null means yes for conversational rows.",
          docs:
            "As TRL's `assistant_only_loss`: the assistant's text and the end-of-turn token after it carry loss, " +
            "the system and user turns do not. Templates without {% generation %} tags work too: the assistant's " +
            'text is found by rendering the conversation up to each answer.',
        },
        completion_only_loss: {
          kind: 'boolean',
          nullable: true,
          default: null,
          description: 'sft: loss only on the completion of prompt/completion rows; null means yes.',
        },
        packing: {
          kind: 'boolean',
          default: false,
          description:
            'sft: pack rows into max_length blocks (rows never attend to each other; positions restart per row).',
          docs:
            'Saves the compute spent on padding; the run reports how much. Each row keeps its own positions and sees ' +
            'only itself, so the losses are those of unpacked batches.',
        },
        max_train_samples: {
          kind: 'integer',
          min: 1,
          nullable: true,
          default: null,
          description: 'Use only the first N training rows (quick experiments); null uses all.',
        },
        max_eval_samples: {
          kind: 'integer',
          min: 1,
          nullable: true,
          default: null,
          description: 'Use only the first N evaluation rows; null uses all.',
        },
      },
    },
    lora: {
      kind: 'object',
      description: 'The LoRA adapter: W + (lora_alpha / r)·B·A on the target modules, with A and B trained.',
      keys: {
        r: {
          kind: 'integer',
          min: 1,
          limit: {
            max: 16384,
            why:
              'A rank above min(in, out) of a layer adds nothing, and no released model has a layer whose smaller ' +
              'side exceeds 16384 (Llama 3.1 405B); larger ranks only exhaust memory (1e6 aborts WebAssembly).',
          },
          default: 8,
          aliases: ['rank', 'lora_r'],
          description: 'Rank of the adapter matrices A (r×in) and B (out×r).',
          docs:
            'The adapter adds (lora_alpha / r)·B·A to each target weight W (out×in), so it trains r·(in + out) ' +
            'numbers per layer instead of in·out. Usual ranks are 4 to 64; a rank above min(in, out) ' +
            'of a layer adds nothing.',
        },
        lora_alpha: {
          kind: 'number',
          min: 0,
          exclusiveMin: true,
          limit: {
            max: 65536,
            why:
              'The update is scaled by lora_alpha / r: 65536 is 4 × the largest r, and the scale itself must stay ' +
              'at most 256 (a larger one makes the first steps of lora_B overwhelm the layer).',
          },
          default: 16,
          aliases: ['alpha'],
          description: 'Scale: the update is multiplied by lora_alpha / r (or lora_alpha / √r with use_rslora).',
          docs:
            'The usual choice is lora_alpha = r or 2r (a scale of 1 or 2). The scale multiplies the update like a ' +
            'learning rate would, so when you change r keep lora_alpha / r fixed (or use `use_rslora`) ' +
            'to keep a tuned learning rate.',
        },
        lora_dropout: {
          kind: 'number',
          min: 0,
          max: 1,
          exclusiveMax: true,
          limit: {
            max: 0.9,
            why:
              'Dropout scales the inputs it keeps by 1 / (1 − lora_dropout): past 0.9 that is over 10×, and toward 1 ' +
              'it overflows float32. LoRA uses 0 to 0.1.',
          },
          default: 0,
          aliases: ['dropout'],
          description: 'Dropout applied to the adapter input during training.',
        },
        target_modules: {
          kind: 'string-list',
          also: ['all-linear'],
          minItems: 1,
          nullable: true,
          default: null,
          aliases: ['target_layers', 'modules'],
          description:
            "Module names (or name suffixes) that get an adapter, or all-linear; null uses the model family's " +
            'default (attention projections).',
          docs:
            "PEFT's matching: `q_proj` adapts every module named `q_proj` or ending in `.q_proj`. Defaults: " +
            'llama family `[q_proj, v_proj]`, gpt2 `[c_attn]`, bert/roberta `[query, value]`, distilbert ' +
            '`[q_lin, v_lin]`. `all-linear` adapts every Linear layer except the output head. ' +
            'Only Linear layers can be adapted here (no embeddings). `loraplus info MODEL` lists the names.',
        },
        use_rslora: {
          kind: 'boolean',
          default: false,
          aliases: ['rslora'],
          description: 'Rank-stabilised LoRA: scale by lora_alpha / √r instead of lora_alpha / r.',
        },
        modules_to_save: {
          kind: 'string-list',
          nullable: true,
          default: null,
          description:
            'Modules trained fully and saved with the adapter; null saves the task head when the task has one.',
        },
        init_adapter: {
          kind: 'path',
          nullable: true,
          default: null,
          aliases: ['adapter', 'resume_from', 'adapter_path'],
          exists: { type: 'dir', contains: 'adapter_config.json', what: 'adapter folder' },
          description:
            'A PEFT adapter folder (adapter_config.json, adapter_model.safetensors) to start from; null starts fresh.',
        },
      },
    },
    training: {
      kind: 'object',
      description:
        "The optimiser (LoRA+ AdamW with a larger learning rate for lora_B, or PEFT's riemannian or lorafa) and " +
        'the training loop.',
      keys: {
        optimizer: {
          kind: 'enum',
          values: ['adamw', 'riemannian', 'lorafa'],
          default: 'adamw',
          aliases: ['optim', 'optimizer_type'],
          description:
            "adamw: LoRA+ (lora_B at learning_rate·λ); riemannian or lorafa: PEFT's LoRA optimizers that need no λ " +
            '(lora_A and lora_B share learning_rate).',
          docs:
            "Each follows PEFT 0.21's function of the same name exactly:\n\n" +
            '- `adamw`: `create_loraplus_optimizer`, AdamW with lora_B (and 1-D tensors) at learning_rate·λ.\n' +
            '- `riemannian`: `create_riemannian_optimizer` (Zhang & Pilanci, *Riemannian Preconditioned LoRA*, ' +
            'ICML 2024): before each AdamW step the gradients of every LoRA pair are preconditioned with r×r ' +
            'matrices, ∇A ← (BᵀB + reg·I)⁻¹∇A and ∇B ← ∇B(AAᵀ + reg·I)⁻¹; one learning rate and weight decay for ' +
            'all tensors (1-D ones too). The paper reports it robust to the learning rate.\n' +
            '- `lorafa`: `create_lorafa_optimizer` (LoRA-FA, Zhang et al. 2023): lora_A stays frozen at its ' +
            "initial value (it is still saved with the adapter) and lora_B's gradient is projected, " +
            "∇B ← (r/lora_alpha)²·∇B(AAᵀ)⁻¹, before PEFT's AdamW step (β (0.9, 0.999), ε 1e-6, " +
            "decay after the update, as transformers' AdamW did; adam_beta1/2 and adam_epsilon do not apply).\n\n" +
            'With riemannian and lorafa, loraplus_lr_ratio and loraplus_lr_embedding are ignored; `loraplus tune` ' +
            'then searches learning_rate alone for them (`--grid optimizer=adamw,riemannian` compares them with ' +
            'the tuned LoRA+).',
        },
        optimizer_args: {
          kind: 'object',
          description:
            'Parameters of the PEFT optimizer that have no key of their own: reg for riemannian (lorafa takes none).',
          docs:
            "PEFT's other parameters come from the config: `lr` is learning_rate, `weight_decay` is " +
            'training.weight_decay, betas and eps are adam_beta1, adam_beta2 and adam_epsilon (riemannian), and ' +
            "`r`, `lora_alpha`, `use_rslora` (lorafa's) are the lora section's.",
          keys: {
            reg: {
              kind: 'number',
              min: 0,
              default: 1e-2,
              aliases: ['damping'],
              description:
                "riemannian: the damping added to the diagonal of BᵀB and AAᵀ before they are inverted (PEFT's reg).",
              docs:
                'It keeps the r×r inverse finite while B is (near) zero, as it is when training starts: a larger reg ' +
                'makes the preconditioner closer to plain AdamW. 0 uses the pseudo-inverse, as PEFT does.',
            },
          },
        },
        learning_rate: {
          kind: 'number',
          auto: true,
          min: 0,
          exclusiveMin: true,
          limit: {
            min: 1e-9,
            max: LR_MAX,
            why:
              `${LR_MAX_WHY} Below 1e-9 the step is smaller than float32 can add to a weight of that size ` +
              '(its spacing there is 1.9e-9), so nothing trains.',
          },
          default: 2e-4,
          aliases: ['lr'],
          description:
            'η: the learning rate of lora_A (and of modules_to_save); lora_B uses η·loraplus_lr_ratio. ' +
            'Write 2e-4 or 0.0002, or auto to let a tune pick it.',
          docs:
            'With LoRA+ the effective learning rate of lora_B is η·λ, so η is usually a little lower than for ' +
            'plain LoRA (PEFT suggests about half of a tuned LoRA rate). If the loss spikes or a classifier ' +
            'collapses to one class, lower η before λ.\n\n' +
            '`auto` searches it: `loraplus train` first runs `loraplus tune` (a successive-halving search over ' +
            'learning_rate × loraplus_lr_ratio), then trains the winner to the full length.\n\n' +
            'With `optimizer: riemannian` or `lorafa` every trained tensor uses η (there is no λ).',
        },
        loraplus_lr_ratio: {
          kind: 'number',
          auto: true,
          min: 0,
          exclusiveMin: true,
          default: 16,
          aliases: ['lr_ratio', 'loraplus_ratio', 'ratio'],
          description:
            'λ: the lora_B learning rate is learning_rate·λ (LoRA+, Hayou et al. 2024); ' +
            '2^4 = 16 is the usual start; 1 is plain LoRA; auto lets a tune pick it.',
          docs:
            '**LoRA+** (Hayou, Ghosh and Yu, *LoRA+: Efficient Low Rank Adaptation of Large Models*, ICML 2024) ' +
            'trains B with a larger learning rate than A: λ = lr_B / lr_A. B starts at zero and A at random, ' +
            'and with one shared learning rate B learns too slowly as models get wider; ' +
            'the paper shows λ ≫ 1 is needed for efficient feature learning and reports up to 2× faster ' +
            'fine-tuning and 1–2% better accuracy at the same cost as LoRA.\n\n' +
            '- λ = 2^4 = 16 is the usual start; harder tasks (the model must change its features more) ' +
            'want a larger λ. Values outside 2^0..2^8 are unusual.\n' +
            '- λ = 1 is plain LoRA; λ < 1 makes B learn slower than A, the opposite of LoRA+.\n' +
            "- lora_B and 1-D tensors (biases, norms) train at learning_rate·λ, as in PEFT's " +
            '`create_loraplus_optimizer`.\n' +
            '- The best λ depends on the task and on learning_rate (LoRA+ §6): `auto` tunes it, with ' +
            'learning_rate when that is `auto` too (`loraplus tune`).\n' +
            '- Only `optimizer: adamw` uses λ; riemannian and lorafa ignore it.',
        },
        loraplus_lr_embedding: {
          kind: 'number',
          min: 0,
          limit: { max: LR_MAX, why: LR_MAX_WHY },
          default: 1e-6,
          description: 'Learning rate for LoRA adapters on embedding layers (LoRA+ keeps these small).',
          docs:
            "PEFT's `loraplus_lr_embedding` (default 1e-6): LoRA+ gives the A and B of adapters on embedding layers " +
            'this learning rate instead of learning_rate and learning_rate·λ. It only matters when ' +
            '`target_modules` names an embedding layer.',
        },
        weight_decay: {
          kind: 'number',
          min: 0,
          limit: {
            max: 1,
            why:
              'AdamW multiplies each weight by 1 − lr·weight_decay per step: past 1 (with lora_B at lr·λ, sooner) ' +
              'that factor turns negative and the weights flip sign. Usual values are 0 to 0.1.',
          },
          default: 0,
          description: 'AdamW decoupled weight decay on the trained parameters.',
        },
        adam_beta1: {
          kind: 'number',
          min: 0,
          max: 1,
          exclusiveMax: true,
          default: 0.9,
          description: 'AdamW β1: decay rate of the gradient moving average.',
        },
        adam_beta2: {
          kind: 'number',
          min: 0,
          max: 1,
          exclusiveMax: true,
          default: 0.999,
          description: 'AdamW β2: decay rate of the squared-gradient moving average.',
        },
        adam_epsilon: {
          kind: 'number',
          min: 0,
          exclusiveMin: true,
          limit: {
            min: 1e-16,
            max: 1,
            why:
              "ε keeps AdamW's division finite. float32 has no normal number below 1.2e-38 (1e-46 is 0 there), and " +
              'a gradient whose square underflows (|g| < 1e-19) is divided by ε alone: ε ≥ 1e-16 keeps that step ' +
              "below 1e-3·lr. Above 1, ε outweighs √v and AdamW's per-weight scaling is lost.",
          },
          default: 1e-8,
          aliases: ['eps'],
          description: 'AdamW ε added to the denominator for numerical stability.',
        },
        batch_size: {
          kind: 'integer',
          min: 1,
          limit: {
            max: 65536,
            why:
              'A pass holds the activations of batch_size × max_length tokens; more than 65536 examples per pass ' +
              'fit in no memory this engine runs in. Use gradient_accumulation_steps for larger batches.',
          },
          default: 8,
          aliases: ['per_device_train_batch_size', 'train_batch_size', 'batchsize'],
          description: 'Examples per forward/backward pass.',
          docs:
            'The effective batch of one optimiser step is batch_size × gradient_accumulation_steps; ' +
            'it should be well below the number of training examples.',
        },
        gradient_accumulation_steps: {
          kind: 'integer',
          min: 1,
          limit: {
            max: 65536,
            why: 'One optimiser step runs this many passes: past 65536 a step does not end in any reasonable time.',
          },
          default: 1,
          aliases: ['grad_accum', 'accumulation_steps'],
          description:
            'Passes whose gradients are summed before one optimiser step (effective batch = batch_size × this).',
        },
        max_steps: {
          kind: 'integer',
          min: 1,
          limit: STEPS_LIMIT,
          nullable: true,
          default: null,
          aliases: ['steps', 'num_steps', 'total_steps'],
          description: 'Number of optimiser steps; when set it wins over epochs.',
        },
        epochs: {
          kind: 'number',
          min: 0,
          exclusiveMin: true,
          limit: {
            max: 1e6,
            why:
              'The run takes epochs × (steps per epoch) steps: past a million passes over the data it does not end ' +
              'in any reasonable time (1e308 never ends).',
          },
          nullable: true,
          default: null,
          aliases: ['num_train_epochs', 'num_epochs', 'epoch'],
          description:
            'Passes over the training data (fractions allowed); used when max_steps is null, and 1 when both are null.',
        },
        lr_scheduler: {
          kind: 'enum',
          values: ['constant', 'linear', 'cosine'],
          default: 'linear',
          aliases: ['lr_scheduler_type', 'scheduler'],
          description: 'Learning-rate schedule after warmup: constant, linear decay to 0, or cosine decay to 0.',
        },
        warmup_steps: {
          kind: 'integer',
          min: 0,
          limit: STEPS_LIMIT,
          default: 0,
          aliases: ['warmup'],
          description: 'Steps of linear warmup from 0 to the learning rate.',
        },
        max_grad_norm: {
          kind: 'number',
          min: 0,
          default: 1.0,
          aliases: ['clip_grad_norm', 'grad_clip'],
          description: 'Clip the global gradient norm to this value; 0 = no clipping.',
        },
        shuffle: { kind: 'boolean', default: true, description: 'Shuffle the training rows every epoch (with seed).' },
        seed: {
          kind: 'integer',
          limit: {
            min: 0,
            max: 4294967295,
            why:
              'Seeds are 32-bit unsigned integers, as in NumPy: larger ones lose precision in JavaScript and ' +
              'overflow the per-step dropout seed.',
          },
          default: 42,
          aliases: ['random_seed'],
          description: 'Seed for shuffling, dropout and adapter initialisation, so runs repeat.',
        },
        eval_every: {
          kind: 'integer',
          min: 0,
          default: 0,
          aliases: ['eval_steps'],
          description: 'Evaluate every N steps; 0 = only at the end.',
          docs:
            'Needs evaluation data: `data.eval`, ' +
            'or `data.eval_fraction` > 0 to hold out part of the training rows.',
        },
        save_every: {
          kind: 'integer',
          min: 0,
          default: 0,
          aliases: ['save_steps'],
          description: 'Save an adapter checkpoint every N steps; 0 = only the final adapter.',
        },
        log_every: {
          kind: 'integer',
          min: 1,
          default: 1,
          aliases: ['logging_steps'],
          description: 'Report loss and learning rates every N steps.',
        },
        save_total_limit: {
          kind: 'integer',
          min: 0,
          default: 0,
          description: 'Keep at most this many checkpoints (oldest deleted first); 0 = keep all.',
        },
      },
    },
    eval: {
      kind: 'object',
      description: 'What each evaluation does besides the loss: answers generated by the model being trained (sft).',
      keys: {
        generate: {
          kind: 'integer',
          min: 0,
          max: 32,
          nullable: true,
          default: null,
          aliases: ['num_samples', 'samples'],
          description:
            'sft: at each eval, answer the first N eval prompts by greedy decoding with the adapter and log them ' +
            '(prompt, reference, answer); null or 0 = off.',
          docs:
            'The prompt is the conversation up to its last assistant turn, rendered with the generation prompt; the ' +
            "reference is that turn's text (or the completion). When every reference is a short label (3 words or " +
            'fewer), the eval also reports the exact-match accuracy of the answers (trimmed, case-insensitive). ' +
            'The answers run between training steps, so keep N small; the dashboard shows them under Samples.',
        },
        max_new_tokens: {
          kind: 'integer',
          min: 1,
          max: 512,
          default: 32,
          aliases: ['max_tokens'],
          description: 'sft: the most tokens generated per answer (it stops earlier at eos or end of turn).',
        },
      },
    },
  },
} as const satisfies ObjectSpec;

// ---- The TypeScript type, derived from `schema` ----

type Nullish<S> = S extends { nullable: true } ? null : never;
// A: what a key with `auto: true` may hold besides a number: 'auto' as validated (TunableConfig), nothing once a
// tune has picked the values (TrainConfig).
type Auto<S, A> = S extends { auto: true } ? A : never;
type ValueOf<S, A = never> = S extends { kind: 'number' | 'integer' }
  ? number
  : S extends { kind: 'boolean' }
    ? boolean
    : S extends { kind: 'string' | 'path' }
      ? string
      : S extends { kind: 'enum'; values: readonly (infer V)[] }
        ? V
        : S extends { kind: 'string-list'; also: readonly (infer V)[] }
          ? string[] | V
          : S extends { kind: 'string-list' }
            ? string[]
            : S extends { kind: 'object'; keys: infer K }
              ? ConfigOf<K, A>
              : never;
type ConfigOf<K, A> = {
  -readonly [P in keyof K as K[P] extends { kind: 'marker' } ? never : P]:
    ValueOf<K[P], A> | Nullish<K[P]> | Auto<K[P], A>;
};
// Defaults exist for every key except the required ones (which have none) and markers.
type DefaultsOf<K> = {
  -readonly [P in keyof K as K[P] extends { kind: 'marker' } | { required: true } ? never : P]: K[P] extends {
    kind: 'object';
    keys: infer C;
  }
    ? DefaultsOf<C>
    : ValueOf<K[P]> | Nullish<K[P]>;
};

/** A config as train() runs it: every key present, defaults filled, paths absolute, no `auto` left. */
export type TrainConfig = ConfigOf<typeof schema.keys, never>;
/** A validated config, which may still say `auto` for learning_rate and loraplus_lr_ratio (see auto.ts). */
export type TunableConfig = ConfigOf<typeof schema.keys, 'auto'>;
export type TrainConfigDefaults = DefaultsOf<typeof schema.keys>;

function defaultsOf(spec: ObjectSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec.keys)) {
    if (s.kind === 'object') out[key] = defaultsOf(s);
    else if (s.kind !== 'marker' && !s.required) out[key] = s.default ?? null;
  }
  return out;
}
/** The default of every key that has one (deep-frozen; copy before changing). */
export const defaults = deepFreeze(defaultsOf(schema)) as TrainConfigDefaults;

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') for (const x of Object.values(v)) deepFreeze(x);
  return Object.freeze(v);
}
