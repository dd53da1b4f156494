// The sft data set: rows in any chat format → TRL-style examples (sft.ts), cut to max_length, rows with no loss left
// dropped (counted, reported once), and batches of them: right-padded to the longest row with an attention mask and
// a loss mask (default), or packed into max_length blocks where each row sees only itself and its positions
// restart (data.packing).
import type { TextTokenizer } from '../../models/tokenizer';
import { LoraPlusError } from '../../protocol/errors';
import { detectFormat, toChatExample, CHAT_FORMATS, type ChatFormat } from './chat';
import type { ChatTemplate } from './chat-render';
import type { Batch } from './datasets';
import { atRow } from './fields';
import { lineOf, type Row } from './rows';
import { tokenizeSft, truncateSft, type SftCounts, type SftExample } from './sft';

export interface SftData {
  kind: 'sft';
  examples: SftExample[];
  format: ChatFormat;
  counts: SftCounts & { rows: number };
  packed: PackedBlock[] | null; // data.packing: the examples packed into max_length blocks
}

export interface SftBuildOptions {
  format: ChatFormat | 'auto';
  template: ChatTemplate | null;
  assistantOnlyLoss: boolean | null; // null: yes for conversations
  completionOnlyLoss: boolean | null; // null: yes
  maxLength: number;
  packing: boolean;
  eosToken: string | null;
  specialTokens: readonly string[];
  textField: string;
  file: string;
  onRow?: (done: number) => void;
}

export function buildSft(rows: Row[], tok: TextTokenizer, o: SftBuildOptions): SftData {
  const format = o.format === 'auto' ? detectFormat(rows[0]) : o.format;
  if (!format) {
    throw new LoraPlusError({
      code: 'data/unknown-format',
      message: `the first row of the data has none of the fields of a chat format (${Object.keys(rows[0] ?? {}).join(', ')})`,
      file: o.file,
      line: lineOf(rows[0]),
      yamlPath: 'data.format',
      hint: `Set data.format to one of ${CHAT_FORMATS.join(', ')}, or reshape the rows (see the README's sft section).`,
    });
  }
  const conversational = format === 'messages' || format === 'sharegpt' || format === 'alpaca';
  const settings = {
    assistantOnlyLoss: o.assistantOnlyLoss ?? conversational,
    completionOnlyLoss: o.completionOnlyLoss ?? true,
    maxLength: o.maxLength,
    eosToken: o.eosToken,
    specialTokens: o.specialTokens,
  };
  const counts = { truncated: 0, dropped: 0, rows: rows.length };
  const examples: SftExample[] = [];
  rows.forEach((row, i) => {
    const ex = atRow(row, o.file, () =>
      truncateSft(
        tokenizeSft(toChatExample(row, format, o.file, o.textField), tok, o.template, settings),
        o.maxLength,
        counts,
      ),
    );
    if (ex) examples.push(ex);
    o.onRow?.(i + 1);
  });
  if (!examples.length) {
    throw new LoraPlusError({
      code: 'data/no-loss-tokens',
      message: `none of the ${rows.length} rows has a token to learn from after max_length (${o.maxLength}) cuts it`,
      file: o.file,
      yamlPath: 'data.max_length',
      hint: 'Raise data.max_length: the prompts fill it before the answers start.',
    });
  }
  return { kind: 'sft', examples, format, counts, packed: o.packing ? packExamples(examples, o.maxLength) : null };
}

/** Right-padded to the longest example with padId; `lossMask` marks the target tokens. */
export function collateSft(ex: SftExample[], padId: number, multipleOf = 1): Batch {
  const seq = Math.ceil(Math.max(...ex.map((e) => e.ids.length)) / multipleOf) * multipleOf;
  const inputIds = new Int32Array(ex.length * seq).fill(padId);
  const attentionMask = new Int32Array(ex.length * seq);
  const lossMask = new Int32Array(ex.length * seq);
  let tokens = 0;
  ex.forEach((e, r) => {
    inputIds.set(e.ids, r * seq);
    attentionMask.fill(1, r * seq, r * seq + e.ids.length);
    lossMask.set(e.loss, r * seq);
    tokens += e.ids.length;
  });
  return {
    inputIds,
    attentionMask,
    typeIds: new Int32Array(ex.length * seq),
    labels: null,
    lossMask,
    batch: ex.length,
    seq,
    tokens,
  };
}

// ---- packing --------------------------------------------------------------------------------------------------

/** A max_length block of whole examples (indices into the data set), each keeping its own positions. */
export interface PackedBlock {
  members: number[];
  length: number;
}

/**
 * Best-fit decreasing, as TRL's default `bfd` strategy: the longest examples first, each into the fullest block it
 * still fits. Every example fits (it was cut to max_length).
 */
export function packExamples(examples: SftExample[], maxLength: number): PackedBlock[] {
  const order = examples.map((e, i) => i).sort((a, b) => examples[b].ids.length - examples[a].ids.length || a - b);
  const blocks: PackedBlock[] = [];
  for (const i of order) {
    const n = examples[i].ids.length;
    let best: PackedBlock | null = null;
    for (const b of blocks) if (b.length + n <= maxLength && (!best || b.length > best.length)) best = b;
    if (best) [best.members, best.length] = [[...best.members, i], best.length + n];
    else blocks.push({ members: [i], length: n });
  }
  return blocks;
}

/**
 * Packed blocks as a batch: each block's examples side by side, right-padded to the longest block; segmentIds
 * (1, 2, … per example, 0 for padding) keep the examples from attending to each other, and positionIds restart at
 * 0 for each example.
 */
export function collatePacked(blocks: PackedBlock[], examples: SftExample[], padId: number, multipleOf = 1): Batch {
  const seq = Math.ceil(Math.max(...blocks.map((b) => b.length)) / multipleOf) * multipleOf;
  const size = blocks.length * seq;
  const [inputIds, attentionMask, lossMask] = [
    new Int32Array(size).fill(padId),
    new Int32Array(size),
    new Int32Array(size),
  ];
  const [segmentIds, positionIds] = [new Int32Array(size), new Int32Array(size)];
  let tokens = 0;
  blocks.forEach((block, r) => {
    let at = r * seq;
    block.members.forEach((m, s) => {
      const e = examples[m];
      inputIds.set(e.ids, at);
      lossMask.set(e.loss, at);
      attentionMask.fill(1, at, at + e.ids.length);
      segmentIds.fill(s + 1, at, at + e.ids.length);
      for (let k = 0; k < e.ids.length; k++) positionIds[at + k] = k;
      at += e.ids.length;
      tokens += e.ids.length;
    });
  });
  return {
    inputIds,
    attentionMask,
    typeIds: new Int32Array(size),
    labels: null,
    lossMask,
    segmentIds,
    positionIds,
    batch: blocks.length,
    seq,
    tokens,
  };
}

/** Padding tokens of right-padded batches of the examples vs of the packed blocks, `batchSize` rows a batch. */
export function paddingSaved(data: SftData, batchSize: number): { padded: number; packed: number } {
  const pad = (lengths: number[]) => {
    let total = 0;
    for (let i = 0; i < lengths.length; i += batchSize) {
      const group = lengths.slice(i, i + batchSize);
      total += group.length * Math.max(...group) - group.reduce((a, b) => a + b, 0);
    }
    return total;
  };
  return {
    padded: pad(data.examples.map((e) => e.ids.length)),
    packed: data.packed ? pad(data.packed.map((b) => b.length)) : 0,
  };
}
