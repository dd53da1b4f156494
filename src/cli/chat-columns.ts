// Two answers side by side in a terminal (`loraplus chat --compare` on a wide TTY): both stream at once, a token of
// each in turn, and the block is redrawn in place (cursor up, clear, draw) as they grow, at most ~30 times a second.
// A block taller than the screen cannot be redrawn in place (its top has scrolled away): it is then drawn once, whole,
// when both answers are done.

export interface Screen {
  write(s: string): unknown;
  columns: number;
  rows: number;
}

const GAP = ' │ ';
const FRAME_MS = 33;

export class Columns {
  private readonly texts: string[];
  private drawn = 0; // lines of the block on screen now
  private last = 0; // when it was last drawn
  private overflow = false;

  constructor(
    private readonly screen: Screen,
    private readonly labels: readonly string[],
  ) {
    this.texts = labels.map(() => '');
  }

  add(column: number, text: string): void {
    this.texts[column] += text;
    if (Date.now() - this.last >= FRAME_MS) this.draw();
  }

  /** The final block, with a newline after it. */
  finish(): void {
    this.draw(true);
  }

  private draw(final = false): void {
    this.last = Date.now();
    if (this.overflow && !final) return;
    const lines = this.block();
    const erase = this.drawn ? `\x1b[${this.drawn}F\x1b[J` : '';
    if (!final && lines.length > this.screen.rows - 2) {
      // Taller than the screen: say so once, draw the whole block when done.
      this.overflow = true;
      this.screen.write(`${erase}(both answers are longer than the screen: shown when done)\n`);
      this.drawn = 1;
      return;
    }
    this.screen.write(erase + lines.map((l) => `${l}\n`).join(''));
    this.drawn = lines.length;
  }

  /** The block's lines: the labels, a rule, then each answer wrapped to its column. */
  private block(): string[] {
    const width = Math.max(
      20,
      Math.floor((this.screen.columns - GAP.length * (this.labels.length - 1)) / this.labels.length),
    );
    const cols = this.texts.map((t, i) => [fit(this.labels[i], width), '─'.repeat(width), ...wrap(t, width)]);
    const height = Math.max(...cols.map((c) => c.length));
    const out: string[] = [];
    for (let r = 0; r < height; r++)
      out.push(
        cols
          .map((c) => fit(c[r] ?? '', width))
          .join(GAP)
          .trimEnd(),
      );
    return out;
  }
}

/** `text` broken into lines of at most `width` characters (at spaces where it can), its own line breaks kept. */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = [...para];
    while (line.length > width) {
      const space = line.lastIndexOf(' ', width);
      const cut = space > width / 2 ? space : width;
      out.push(line.slice(0, cut).join('').trimEnd());
      line = line.slice(line[cut] === ' ' ? cut + 1 : cut);
    }
    out.push(line.join(''));
  }
  return out;
}

function fit(s: string, width: number): string {
  const chars = [...s];
  return chars.length > width ? chars.slice(0, width).join('') : s + ' '.repeat(width - chars.length);
}
