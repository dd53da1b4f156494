// PLACEHOLDER (being written): the merge command.
import type { Studio } from './studio';

export async function mergeAdapter(_s: Studio, target?: string): Promise<void> {
  throw new Error(`merge not built yet: ${target}`);
}
