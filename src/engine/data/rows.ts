// Reading data files into rows (plain objects): .tsv, .csv, .jsonl, .json, .txt. Each row remembers the 1-based
// line it came from (see `lineOf`), so errors found later, while tokenizing, can still point at file:line.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isUtf8 } from 'node:buffer';
import { LoraPlusError } from '../../protocol/errors';
import { isObject } from '../../protocol/json';

export type Row = Record<string, unknown>;

export const SUPPORTED_EXTENSIONS = ['.tsv', '.csv', '.jsonl', '.json', '.txt'] as const;

// A symbol key is invisible to Object.keys and JSON.stringify, so the row still lists only the file's own fields.
const LINE = Symbol('line');

/** The 1-based line a row starts on in its file, when it was read by `readRows`. */
export function lineOf(row: Row): number | undefined {
  return (row as { [LINE]?: number })[LINE];
}

function withLine(row: Row, line: number): Row {
  Object.defineProperty(row, LINE, { value: line, enumerable: false });
  return row;
}

export function readRows(file: string): Row[] {
  const ext = path.extname(file).toLowerCase();
  if (!(SUPPORTED_EXTENSIONS as readonly string[]).includes(ext)) {
    throw new LoraPlusError({
      code: 'data/unsupported-format',
      message: `cannot read '${ext || path.basename(file)}' files`,
      file,
      hint: `Supported data files: ${SUPPORTED_EXTENSIONS.join(', ')}.`,
    });
  }
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    throw new LoraPlusError({
      code: 'data/not-found',
      message: `data file ${file} does not exist`,
      file,
      hint: "Check the path; relative paths are resolved from the config file's folder.",
    });
  }
  const text = decodeUtf8(fs.readFileSync(file), file).replace(/^\uFEFF/, ''); // editors on Windows write a BOM
  if (text.trim() === '') return []; // an empty file has no header either
  switch (ext) {
    case '.tsv':
      return readTsv(text, file);
    case '.csv':
      return readCsv(text, file);
    case '.jsonl':
      return readJsonl(text, file);
    case '.json':
      return readJsonArray(text, file);
    default:
      return readTxt(text);
  }
}

/**
 * The file's text, or an error at the first line that is not UTF-8: decoding it anyway would train on U+FFFD
 * where the file had é (a Latin-1 or Windows-1252 file) or on NUL bytes (UTF-16).
 */
function decodeUtf8(bytes: Buffer, file: string): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const hint = 'Save the file as UTF-8 (in VS Code: the encoding in the status bar → Save with Encoding → UTF-8).';
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new LoraPlusError({ code: 'data/not-utf8', message: 'the file is UTF-16, not UTF-8', file, line: 1, hint });
  }
  let line = 1;
  let start = 0;
  for (let end = 0; end <= bytes.length; end++) {
    if (end < bytes.length && bytes[end] !== 0x0a) continue;
    const part = bytes.subarray(start, end);
    if (!isUtf8(part)) {
      const col = part.toString('utf8').indexOf('\uFFFD') + 1; // where a decoder puts its replacement character
      const message = `line ${line} is not valid UTF-8 (at column ${col}): the file has another encoding`;
      throw new LoraPlusError({ code: 'data/not-utf8', message, file, line, hint });
    }
    line++;
    start = end + 1;
  }
  return bytes.toString('utf8'); // not reached: some line is not UTF-8
}

function malformed(file: string, line: number, message: string, hint: string): LoraPlusError {
  return new LoraPlusError({ code: 'data/malformed', message, file, line, hint });
}

function lines(text: string): string[] {
  return text.split(/\r?\n/);
}

/**
 * Tab-separated with a header row and no quoting (GLUE's files). Cells are trimmed: GLUE keeps a space before the tab.
 */
function readTsv(text: string, file: string): Row[] {
  const all = lines(text);
  const header = all[0].split('\t').map((h) => h.trim());
  checkHeader(header, file);
  const rows: Row[] = [];
  for (let i = 1; i < all.length; i++) {
    if (all[i].trim() === '') continue;
    const cells = all[i].split('\t');
    if (cells.length !== header.length) {
      throw malformed(
        file,
        i + 1,
        `expected ${header.length} tab-separated columns (${header.join(', ')}) but found ${cells.length}`,
        'Each line needs one value per header column; a tab inside the text splits it.',
      );
    }
    rows.push(withLine(Object.fromEntries(header.map((h, c) => [h, cells[c].trim()])), i + 1));
  }
  return rows;
}

/** RFC 4180: comma-separated, a header row, fields in double quotes may hold commas, newlines and "" for a quote. */
function readCsv(text: string, file: string): Row[] {
  const records = parseCsv(text, file);
  if (records.length === 0) return [];
  const header = records[0].cells.map((h) => h.trim());
  checkHeader(header, file);
  return records.slice(1).flatMap(({ cells, line }) => {
    if (cells.length === 1 && cells[0] === '') return []; // a blank line
    if (cells.length !== header.length) {
      throw malformed(
        file,
        line,
        `expected ${header.length} comma-separated columns (${header.join(', ')}) but found ${cells.length}`,
        'Put values that contain commas in double quotes, e.g. "good, not great".',
      );
    }
    return [withLine(Object.fromEntries(header.map((h, c) => [h, cells[c]])), line)];
  });
}

function parseCsv(text: string, file: string): { cells: string[]; line: number }[] {
  const records: { cells: string[]; line: number }[] = [];
  let cells: string[] = [];
  let cell = '';
  let line = 1;
  let start = 1; // the line the current record began on
  let i = 0;
  const endRecord = () => {
    cells.push(cell);
    records.push({ cells, line: start });
    cells = [];
    cell = '';
  };
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"' && cell === '') {
      const quoteLine = line;
      i++;
      for (;;) {
        if (i >= text.length)
          throw malformed(
            file,
            quoteLine,
            'a quoted field is never closed',
            'Close the field with a double quote; write a quote inside a field as "".',
          );
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            cell += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (text[i] === '\n') line++;
        cell += text[i++];
      }
      if (i < text.length && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
        throw malformed(
          file,
          line,
          `unexpected text after a closing quote: '${text.slice(i, i + 10)}'`,
          'Write a quote inside a quoted field as "".',
        );
      }
    } else if (ch === ',') {
      cells.push(cell);
      cell = '';
      i++;
    } else if (ch === '\n' || ch === '\r') {
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
      endRecord();
      start = ++line;
    } else {
      cell += ch;
      i++;
    }
  }
  if (cell !== '' || cells.length > 0) endRecord();
  return records;
}

function checkHeader(header: string[], file: string): void {
  const seen = new Set<string>();
  for (const h of header) {
    if (h === '' || seen.has(h)) {
      throw malformed(
        file,
        1,
        h === '' ? 'the header row has an empty column name' : `the header row names column '${h}' twice`,
        'The first line must name each column once, e.g. `sentence<TAB>label`.',
      );
    }
    seen.add(h);
  }
}

function readJsonl(text: string, file: string): Row[] {
  const rows: Row[] = [];
  lines(text).forEach((l, i) => {
    if (l.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch (err) {
      throw malformed(
        file,
        i + 1,
        `bad JSON (${(err as Error).message})`,
        'Each line of a .jsonl file must be one complete JSON object, e.g. {"text": "..."}.',
      );
    }
    if (!isObject(v))
      throw malformed(
        file,
        i + 1,
        `expected a JSON object but found ${describe(v)}`,
        'Each line of a .jsonl file must be one JSON object, e.g. {"text": "..."}.',
      );
    rows.push(withLine(v, i + 1));
  });
  return rows;
}

function readJsonArray(text: string, file: string): Row[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    // V8 reports a character position; turn it into the line an editor can jump to.
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const line = pos ? text.slice(0, Number(pos[1])).split('\n').length : undefined;
    throw new LoraPlusError({
      code: 'data/malformed',
      message: `bad JSON (${msg})`,
      file,
      line,
      hint: 'A .json data file must be one array of objects; use .jsonl for one object per line.',
    });
  }
  if (!Array.isArray(v)) {
    throw new LoraPlusError({
      code: 'data/malformed',
      message: `expected a JSON array of objects but found ${describe(v)}`,
      file,
      hint: 'Write the rows as [{"text": "..."}, ...], or use .jsonl with one object per line.',
    });
  }
  const starts = elementLines(text);
  v.forEach((row, i) => {
    if (!isObject(row))
      throw new LoraPlusError({
        code: 'data/malformed',
        message: `element ${i} of the array is ${describe(row)}, not an object`,
        file,
        line: starts[i],
        hint: 'Every element must be an object such as {"text": "..."}.',
      });
    if (starts[i] !== undefined) withLine(row, starts[i]);
  });
  return v as Row[];
}

/**
 * The 1-based line each element of a top-level JSON array starts on (JSON.parse gives no positions), from one scan
 * that follows strings and nesting; run only on text JSON.parse accepted.
 */
function elementLines(text: string): number[] {
  const starts: number[] = [];
  let line = 1;
  let depth = 0;
  let expecting = false; // at depth 1, after '[' or ',': the next value starts an element
  const mark = () => {
    if (depth === 1 && expecting) {
      starts.push(line);
      expecting = false;
    }
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') line++;
    else if (ch === '"') {
      mark();
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++; // strings hold no raw newline
    } else if (ch === '[' || ch === '{') {
      mark();
      if (++depth === 1) expecting = true;
    } else if (ch === ']' || ch === '}') depth--;
    else if (ch === ',') expecting = depth === 1;
    else if (ch.trim() !== '') mark();
  }
  return starts;
}

/** Plain text: every non-empty line is one row `{ text }`. */
function readTxt(text: string): Row[] {
  return lines(text).flatMap((l, i) => (l.trim() === '' ? [] : [withLine({ text: l }, i + 1)]));
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}
