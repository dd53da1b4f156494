// `loraplus export CONFIG --to accelerate --out DIR [--run-dir RUN]`: the run as a job folder for PyTorch + PEFT +
// accelerate (engine/export/job.ts), for a CUDA workstation or a cluster; the run folder it writes comes back here.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { requireResolved } from '../config/auto';
import { requireCheckedTunable } from '../engine/checks/config';
import { exportJob } from '../engine/export/job';
import { LoraPlusError } from '../protocol/errors';

const COLUMN = ' '.repeat(55);
export const EXPORT_USAGE = [
  '  loraplus export CONFIG --to accelerate --out DIR [--run-dir RUN]',
  `${COLUMN}a job folder for PyTorch + PEFT + accelerate (launch.sh, sbatch)`,
].join('\n');

export async function cmdExport(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { to: { type: 'string', default: 'accelerate' }, out: { type: 'string' }, 'run-dir': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1 || !values.out) throw usage('expected CONFIG and --out DIR');
  if (values.to !== 'accelerate') throw usage(`--to ${values.to}: only accelerate is supported`);
  const file = path.resolve(positionals[0]);
  const config = requireResolved(requireCheckedTunable(file), file);
  const r = await exportJob(config, { out: values.out, runDir: values['run-dir'], configFile: file });
  console.log(`exported ${r.steps} steps (${r.trainExamples} training, ${r.evalExamples} eval examples) to ${r.dir}`);
  console.log(`run it: bash ${path.join(r.dir, 'launch.sh')} --config_file accelerate/single_gpu.yaml`);
  console.log(`the run folder: ${path.isAbsolute(r.runDir) ? r.runDir : path.join(r.dir, r.runDir)}`);
  return 0;
}

function usage(message: string): LoraPlusError {
  return new LoraPlusError({ code: 'cli/usage', message, hint: `Usage:\n${EXPORT_USAGE}` });
}
