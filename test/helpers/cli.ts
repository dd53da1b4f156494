// Runs the CLI in-process (src/cli/main.ts main) and captures what it prints.
import { main } from '../../src/cli/main';

export async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const [out, err, log, error] = [[] as string[], [] as string[], console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    return { code: await main(argv), out: out.join('\n'), err: err.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}
