// PLACEHOLDER (being written): `loraplus compare`.
export const COMPARE_USAGE = '  loraplus compare A B [...] [--json]                  (being written)';

export async function cmdCompare(argv: string[]): Promise<number> {
  throw new Error(`compare is not built yet (${argv.join(' ')})`);
}
