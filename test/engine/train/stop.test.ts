// Ctrl-C on `loraplus train` (SIGINT to the real CLI process) saves a checkpoint, then ends; --resume finishes it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { readMetrics } from '../../../src/engine/runs/writer';
import { SST2, STORIES, tempDir } from '../../helpers/shared';

const CLI = path.resolve(__dirname, '..', '..', '..', 'bin', 'loraplus.js'); // needs `npm run build` (npm test does it)

function runCli(
  args: string[],
  onLine?: (line: string, child: ReturnType<typeof spawn>) => void,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const feed = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line) onLine?.(line, child);
      output += chunk.toString();
    };
    child.stdout.on('data', feed);
    child.stderr.on('data', feed);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('stopping the CLI', () => {
  it('SIGINT leaves a resumable checkpoint; --resume completes the run', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'stop.lora.yaml');
    fs.writeFileSync(
      config,
      [
        `model: ${STORIES}`,
        'device: wasm',
        'output_dir: runs',
        'run_name: stop',
        'data:',
        `  train: ${path.join(SST2, 'dev.tsv')}`,
        '  text_field: sentence',
        '  max_length: 32',
        'training:',
        '  batch_size: 4',
        '  max_steps: 400',
        '  learning_rate: 1.0e-3',
      ].join('\n'),
    );
    let sent = false;
    const first = await runCli(['train', config], (line, child) => {
      if (!sent && /^step [3-9]\d*\/400/.test(line)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    assert.ok(sent, `no step line seen:\n${first.output}`);
    assert.equal(first.code, 130, first.output);
    assert.match(first.output, /stopping: saving a checkpoint first/);
    const runDir = path.join(dir, 'runs', 'stop');
    const ck = fs.readdirSync(path.join(runDir, 'checkpoints'));
    assert.equal(ck.length, 1);
    const end = readMetrics(runDir).at(-1)!;
    assert.ok(end.type === 'end' && end.status === 'stopped');
    const stoppedAt = Number(ck[0].replace('step-', ''));
    assert.ok(stoppedAt >= 3 && stoppedAt < 400);

    fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace('max_steps: 400', `max_steps: ${stoppedAt + 2}`));
    const second = await runCli(['train', config, '--resume']);
    assert.equal(second.code, 0, second.output);
    assert.match(second.output, new RegExp(`resuming at step ${stoppedAt}`));
    assert.match(second.output, new RegExp(`finished at step ${stoppedAt + 2}`));
  });
});
