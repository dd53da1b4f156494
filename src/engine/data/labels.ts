// Class labels of sequence classification: collected from the training data, matched by value (1, 1.0, "1" and
// "1.0" are one class), and checked, so a label the head never learned cannot be scored as class 0. The names
// are saved with a run (and order its classification head), so for consistent data they stay the spellings the
// data uses: SST-2's 0/1 stay '0' and '1'.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoraPlusError } from '../../protocol/errors';
import { lineOf, readRows, type Row } from './rows';

export interface LabelOptions {
  labelField: string;
  file: string;
}

/** A decimal number: sign, digits with an optional point, optional exponent (not hex, Infinity or NaN). */
const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * What a label is matched by: numbers by their exact value (as a normalised digits-and-exponent string, so
 * 12345678901234567890 and …891 stay apart, as a float would not keep them), anything else by its text.
 */
export function labelKey(name: string): string {
  const m = DECIMAL.exec(name);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return `t:${name}`;
  const [, sign, int, frac = '', exp = '0'] = m;
  let digits = (int + frac).replace(/^0+/, '');
  if (digits === '') return 'n:0'; // 0, -0.0, 0e5
  let e = Number(exp) - frac.length;
  const trailing = /0*$/.exec(digits)![0].length;
  digits = digits.slice(0, digits.length - trailing);
  e += trailing;
  return `n:${sign === '-' ? '-' : ''}${digits}e${e}`;
}

/** The label of a row as text (trimmed); an empty or missing label is an error at the row's line. */
export function rawLabel(row: Row, i: number, o: LabelOptions): string {
  const v = Object.hasOwn(row, o.labelField) ? row[o.labelField] : undefined;
  const where = { file: o.file, line: lineOf(row) };
  if (v === undefined || v === null) {
    const fields = Object.keys(row);
    throw new LoraPlusError({
      code: 'data/missing-field',
      message: `${rowName(row, i)} has no field '${o.labelField}'; its fields are: ${fields.join(', ') || '(none)'}`,
      ...where,
      yamlPath: 'data.label_field',
      hint: `Set data.label_field to the field that holds the label, or add '${o.labelField}' to every row.`,
    });
  }
  const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
  if (!ok) {
    const shown = JSON.stringify(v) ?? String(v);
    throw new LoraPlusError({
      code: 'data/bad-value',
      message:
        `field '${o.labelField}' of ${rowName(row, i)} should be a label (a name or a number) ` +
        `but is ${shown.length > 60 ? `${shown.slice(0, 60)}…` : shown}`,
      ...where,
    });
  }
  const s = String(v).trim();
  if (s === '') {
    throw new LoraPlusError({
      code: 'data/empty-label',
      message: `${rowName(row, i)} has an empty label (field '${o.labelField}')`,
      ...where,
      hint: 'Give every row its class, or remove the row: an empty label is not a class.',
    });
  }
  return s;
}

/**
 * Label names from the data: one per distinct value, sorted numerically when all are numbers (0, 1, 2, …), else as
 * strings. A class written one way keeps that spelling; one written several ways (1 and 1.0) is named by the
 * number's shortest form.
 */
export function collectLabels(rows: Row[], o: LabelOptions): string[] {
  return labelNames(rows.map((row, i) => rawLabel(row, i, o)));
}

/** The label names of these label texts (the rows' labels, as rawLabel gives them): see collectLabels. */
export function labelNames(values: Iterable<string>): string[] {
  const spellings = new Map<string, Set<string>>();
  for (const v of values) {
    const key = labelKey(v);
    const seen = spellings.get(key);
    if (seen) seen.add(v);
    else spellings.set(key, new Set([v]));
  }
  const names = [...spellings].map(([key, s]) => {
    if (s.size === 1) return [...s][0];
    const short = String(Number([...s][0]));
    return labelKey(short) === key ? short : [...s].sort((a, b) => a.length - b.length || (a < b ? -1 : 1))[0];
  });
  const numeric = names.every((v) => Number.isFinite(Number(v)));
  return numeric ? names.sort((a, b) => Number(a) - Number(b)) : names.sort();
}

export interface LabelMatch {
  labels: string[];
  /** Whether an integer label may also be an index into `labels` (names written in data.labels). */
  byIndex: boolean;
  /** The training file the labels were collected from, for the message when a label is not among them. */
  from?: string;
}

/** The class id of a label's text, or undefined when it is none of `labels`. */
export function labelMatcher(m: LabelMatch): (v: string) => number | undefined {
  const ids = new Map<string, number>();
  m.labels.forEach((name, k) => {
    const key = labelKey(name.trim());
    if (!ids.has(key)) ids.set(key, k);
  });
  // Indices only where they cannot be read as a label name: with numeric names, '2' is the label 2.
  const byIndex = m.byIndex && m.labels.every((l) => !labelKey(l.trim()).startsWith('n:'));
  return (v) =>
    ids.get(labelKey(v)) ?? (byIndex && /^\d+$/.test(v) && Number(v) < m.labels.length ? Number(v) : undefined);
}

/** Maps a row's label onto its class id, or says which label is unknown, where, and against what. */
export function labelIndexer(m: LabelMatch, o: LabelOptions): (row: Row, i: number) => number {
  const match = labelMatcher(m);
  return (row, i) => {
    const v = rawLabel(row, i, o);
    const id = match(v);
    if (id !== undefined) return id;
    throw unknownLabel(v, m, { ...o, line: lineOf(row), rowName: rowName(row, i) });
  };
}

export function unknownLabel(
  v: string,
  m: LabelMatch,
  at: LabelOptions & { line: number | undefined; rowName: string },
): LoraPlusError {
  const shown = `[${m.labels.join(', ')}]`;
  const of = `(field '${at.labelField}' of ${at.rowName})`;
  const byIndex = m.byIndex && m.labels.every((l) => !labelKey(l.trim()).startsWith('n:'));
  return new LoraPlusError({
    code: 'data/unknown-label',
    message: m.from
      ? `label '${v}' ${of} never occurs in the training data (${path.basename(m.from)}), whose labels are ${shown}`
      : `label '${v}' ${of} is not one of the labels ${shown}`,
    file: at.file,
    line: at.line,
    hint: m.from
      ? "The classifier only learns the training data's classes: correct the label, add training rows of " +
        `class '${v}', or list every class in data.labels.`
      : `Use one of those labels${byIndex ? ` or its index 0..${m.labels.length - 1}` : ''}, ` +
        `or add '${v}' to data.labels.`,
  });
}

/** Rows read from a file are placed by file:line; rows made in code by their index. */
export function rowName(row: Row, i: number): string {
  return lineOf(row) ? 'the row' : `row ${i + 1}`;
}

/**
 * Training needs two classes or more: one class trains a head that always answers it, with a loss that goes to 0.
 * `counts[k]` counts the training examples of label k; `given`: the labels are data.labels. Null when it is fine.
 */
export function singleClass(
  labels: string[],
  counts: number[],
  o: { file: string; given: boolean; note?: string },
): LoraPlusError | null {
  const present = counts.flatMap((n, k) => (n > 0 ? [k] : []));
  if (present.length !== 1) return null; // no rows at all is reported as empty data
  const only = labels[present[0]];
  const rows = counts[present[0]];
  return new LoraPlusError({
    code: 'data/single-class',
    message:
      `the training data has only one class, '${only}' (all ${rows.toLocaleString('en-US')} ` +
      `row${rows === 1 ? '' : 's'})${o.given ? ` of the ${labels.length} in data.labels` : ''}`,
    file: o.file,
    yamlPath: 'data.label_field',
    hint:
      'A classifier needs examples of two classes or more: check that data.label_field names the label column ' +
      `and that the file holds every class${o.note ?? ''}.`,
  });
}

// ---- for the config checks: the labels of a data file, read once per version of the file --------------------

export interface LabelSummary {
  /** Per data row, in file order: its label as rawLabel gives it (null: the row's problem), and its line. */
  names: (string | null)[];
  lines: (number | undefined)[];
  /** By row index: why a row has no label (empty, missing, not a name or number), as training would say it. */
  problems: Map<number, LoraPlusError>;
}

/** Files larger than this are not read whole for the config checks (training reads and checks them anyway). */
const SUMMARY_MAX_BYTES = 64 * 1024 * 1024;
const summaries = new Map<string, { stamp: string; value: LabelSummary | null }>();

/**
 * The labels of every row of a data file, or null when the file cannot be read (its own check reports that), is
 * too large to read here, or its first rows lack the field (reported as a missing column).
 */
export function labelSummary(file: string, labelField: string): LabelSummary | null {
  let stamp: string;
  try {
    const s = fs.statSync(file);
    if (!s.isFile() || s.size > SUMMARY_MAX_BYTES) return null;
    stamp = `${s.size}:${s.mtimeMs}:${labelField}`;
  } catch {
    return null;
  }
  const hit = summaries.get(file);
  if (hit?.stamp === stamp) return hit.value;
  let value: LabelSummary | null = null;
  try {
    const rows = readRows(file);
    if (rows.slice(0, 100).some((r) => Object.hasOwn(r, labelField))) {
      const v: LabelSummary = { names: [], lines: [], problems: new Map() };
      rows.forEach((row, i) => {
        v.lines.push(lineOf(row));
        try {
          v.names.push(rawLabel(row, i, { labelField, file }));
        } catch (err) {
          if (!(err instanceof LoraPlusError)) throw err;
          v.names.push(null);
          v.problems.set(i, err);
        }
      });
      value = v;
    }
  } catch (err) {
    if (!(err instanceof LoraPlusError)) throw err; // a malformed file: inspect.ts reports it
  }
  summaries.set(file, { stamp, value });
  return value;
}
