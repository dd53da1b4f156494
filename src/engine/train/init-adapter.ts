// The adapter a run starts from, drawn exactly as Trainer.open draws it: the same seeded generator, first the
// model's fresh head (classification), then the LoRA factors. Another stack (the exported PyTorch job) starts from
// it, so both stacks begin with equal weights instead of two different random draws.
import type { Adapter } from '../../adapters/peft';
import type { TrainConfig } from '../../config/schema';
import { modelTask } from '../../models/types';
import { selectBackend } from '../backend/select';
import { Rng } from '../data/rng';
import { buildModel, type ModelFolder } from './inputs';
import { taskType } from './trainer';
import { Trainables } from './trainables';

/** Our engine's initial adapter for `config` (which has no lora.init_adapter), the fresh head included. */
export async function initialAdapter(config: TrainConfig, folder: ModelFolder, numLabels: number): Promise<Adapter> {
  // Any backend draws the same values (the generator is ours); the plain-JS one needs no heap limit or GPU probe.
  await selectBackend('cpu');
  const rng = new Rng(config.training.seed);
  const model = buildModel(folder, modelTask(config.task), numLabels, rng);
  try {
    const weights = new Trainables(model, config.lora, folder.family, () => rng.next(), null);
    try {
      return await weights.toAdapter(null, taskType(config), {});
    } finally {
      weights.dispose();
    }
  } finally {
    model.dispose();
  }
}
