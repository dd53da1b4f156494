// The winner's final adapter on the whole eval set (rungs were judged on a subset of it): the figure a tune reports.
import { loadAdapter } from '../../adapters/peft';
import type { TrainConfig } from '../../config/schema';
import { modelTask } from '../../models/types';
import type { EvalFigures } from '../../protocol/tune';
import { Rng } from '../data/rng';
import { evaluate } from '../train/evaluate';
import { buildModel, loadEvalData, openModelFolder, padId } from '../train/inputs';
import { Trainables } from '../train/trainables';

/** Evaluates `adapterDir` (with its own r, α and saved head) on `config`'s eval data; the backend is the tune's. */
export async function evaluateAdapter(config: TrainConfig, adapterDir: string): Promise<EvalFigures> {
  const folder = openModelFolder(config.model);
  const data = loadEvalData(config, folder.tokenizer);
  const model = buildModel(folder, modelTask(config.task), data.labels.length, new Rng(config.training.seed));
  let weights: Trainables | null = null;
  try {
    weights = Trainables.fromAdapter(model, folder.family, loadAdapter(adapterDir));
    const r = await evaluate(model, data.eval, padId(folder), config.training.batch_size, weights);
    const { loss, accuracy, perplexity, token_accuracy, examples } = r;
    return {
      loss,
      examples,
      ...(accuracy !== undefined ? { accuracy } : {}),
      ...(perplexity !== undefined ? { perplexity } : {}),
      ...(token_accuracy !== undefined ? { token_accuracy } : {}),
    };
  } finally {
    weights?.dispose();
    model.dispose();
  }
}
