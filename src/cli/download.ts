// `loraplus download ORG/NAME [--revision R] [--json]`: fetches a Hub model into the Hugging Face cache
// (src/engine/hub/download.ts), where a config's `model: ORG/NAME` and Python's transformers both find it. Progress
// goes to stderr: a live bar on a terminal, a plain line every few seconds otherwise (CI logs, pipes). Ctrl-C stops;
// running it again continues the file where it stopped.
import { parseArgs } from 'node:util';
import { downloadModel, fmtBytes, progressLine, type DownloadProgress } from '../engine/hub/download';
import { fmtTime } from '../engine/runs/render';
import { formatError, LoraPlusError } from '../protocol/errors';

export const DOWNLOAD_USAGE =
  '  loraplus download ORG/NAME [--revision R] [--json]   fetch a Hub model into the Hugging Face cache (resumable)';

export async function cmdDownload(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { revision: { type: 'string' }, json: { type: 'boolean' } },
  });
  if (positionals.length !== 1)
    throw new LoraPlusError({
      code: 'cli/usage',
      message: 'download needs one Hub model id',
      hint: `Usage:\n${DOWNLOAD_USAGE}`,
    });
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const render = progressRenderer();
  try {
    const summary = await downloadModel(positionals[0], {
      revision: values.revision,
      signal: controller.signal,
      onProgress: render.progress,
      log: render.line,
    });
    render.end();
    if (values.json) console.log(JSON.stringify(summary, null, 2));
    else {
      const spec = summary.revision === 'main' ? summary.repoId : `${summary.repoId}@${summary.revision}`;
      console.log(
        `${spec} (${summary.modelType}, ${fmtBytes(summary.bytes)}; ${fmtBytes(summary.downloaded)} downloaded now)\n` +
          `  ${summary.snapshot}\n  use it in a config as  model: ${spec}`,
      );
    }
    return 0;
  } catch (err) {
    render.end();
    if (err instanceof LoraPlusError && err.code === 'hub/cancelled') {
      console.error(formatError(err.info));
      return 130;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Progress for a terminal, as src/engine/runs/render.ts does it for training: a live line on a TTY, else plain. */
export function progressRenderer(out: NodeJS.WriteStream = process.stderr) {
  const tty = Boolean(out.isTTY);
  let live = false;
  let lastPlain = 0;
  const clear = () => {
    if (live) out.write('\r\x1b[2K');
    live = false;
  };
  return {
    line(s: string): void {
      clear();
      out.write(`${s}\n`);
    },
    progress(p: DownloadProgress): void {
      const doneFile = p.fileBytes >= p.fileSize;
      if (tty) {
        const width = 24;
        const filled = p.totalBytes ? Math.round((p.bytes / p.totalBytes) * width) : width;
        const rate = p.received / Math.max(1e-3, p.elapsedS);
        const eta = rate > 0 ? ` · ETA ${fmtTime((p.totalBytes - p.bytes) / rate)}` : '';
        out.write(`\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${progressLine(p)}${eta}`);
        live = true;
      } else if (Date.now() - lastPlain > 2000 || (doneFile && p.index === p.files)) {
        lastPlain = Date.now();
        out.write(`${progressLine(p)}\n`);
      }
    },
    end: clear,
  };
}
