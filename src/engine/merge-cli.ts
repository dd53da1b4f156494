// PLACEHOLDER (being written): `loraplus merge`.
export const MERGE_USAGE = '  loraplus merge --adapter DIR --out DIR                (being written)';

export async function cmdMerge(argv: string[]): Promise<number> {
  throw new Error(`merge is not built yet (${argv.join(' ')})`);
}
