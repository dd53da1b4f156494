// The real Python libraries as references (PEFT, transformers, TRL, accelerate), when this machine has them: a
// Python named by LORAPLUS_PYTHON (CI's venv, see .ci/run), else `python3`. Tests that need them skip with one
// line saying how to get them; a machine without Python still passes `npm test`.
import { spawnSync } from 'node:child_process';

const found = new Map<string, string | null>();

/** A Python that imports every module of `modules`, or null. */
export function pythonWith(modules: string[]): string | null {
  const key = modules.join(',');
  if (!found.has(key)) {
    const candidates = [process.env.LORAPLUS_PYTHON, 'python3'].filter((p): p is string => Boolean(p));
    const ok = (py: string) =>
      spawnSync(py, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore', timeout: 120_000 })
        .status === 0;
    found.set(key, candidates.find(ok) ?? null);
  }
  return found.get(key)!;
}

/** The one-line reason a Python test skips. */
export function noPython(modules: string[]): string {
  return (
    `no Python with ${modules.join(', ')}: pip install torch transformers peft trl accelerate safetensors, ` +
    'then LORAPLUS_PYTHON=path/to/python npm test (CI installs them: .ci/run)'
  );
}

/** Runs a Python script (from a string) with arguments; returns stdout, throws with stderr on failure. */
export function runPython(python: string, script: string, args: string[] = [], timeoutMs = 600_000): string {
  const r = spawnSync(python, ['-c', script, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return r.stdout;
}
