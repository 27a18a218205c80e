// Terminal tables for the `sluice` commands: box-drawn when a human is
// looking (TTY), plain aligned text when piped, so `grep`/`awk` still work.

export interface Column {
  readonly header: string;
  /** Numbers read better right-aligned. Default 'left'. */
  readonly align?: 'left' | 'right';
}

export interface TableOptions {
  /** Box-drawing characters when true; plain columns separated by two spaces when false. */
  readonly tty: boolean;
  /** Row indexes (0-based) after which a horizontal rule is drawn in TTY mode, e.g. before a total row. */
  readonly rulesAfter?: readonly number[];
}

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly isTTY?: boolean;
}

/** Whether to draw for a human: an explicit `io.isTTY` wins, else the stream's own flag. */
export function isTty(io: CliIo): boolean {
  if (io.isTTY !== undefined) return io.isTTY;
  const out = io.stdout as NodeJS.WritableStream & { isTTY?: boolean };
  return out.isTTY === true;
}

// Width in terminal cells. Our glyphs (✓ ✗ − → …) are single-cell; strip ANSI just in case.
function cellWidth(s: string): number {
  // eslint-disable-next-line no-control-regex
  return [...s.replace(/\u001b\[[0-9;]*m/g, '')].length;
}

function pad(s: string, width: number, align: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, width - cellWidth(s)));
  return align === 'right' ? fill + s : s + fill;
}

/** Renders rows under headers. Always ends with a newline. */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[], options: TableOptions): string {
  const widths = columns.map((c, i) => Math.max(cellWidth(c.header), ...rows.map((r) => cellWidth(r[i] ?? ''))));
  const align = (i: number): 'left' | 'right' => columns[i]?.align ?? 'left';
  const rules = new Set(options.rulesAfter ?? []);
  if (!options.tty) {
    const line = (cells: readonly string[]): string =>
      columns
        .map((_, i) => pad(cells[i] ?? '', widths[i] ?? 0, align(i)))
        .join('  ')
        .trimEnd();
    return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n') + '\n';
  }
  const rule = (l: string, m: string, r: string): string => l + widths.map((w) => '─'.repeat(w + 2)).join(m) + r;
  const line = (cells: readonly string[]): string =>
    '│' + columns.map((_, i) => ' ' + pad(cells[i] ?? '', widths[i] ?? 0, align(i)) + ' ').join('│') + '│';
  const out = [rule('┌', '┬', '┐'), line(columns.map((c) => c.header)), rule('├', '┼', '┤')];
  rows.forEach((r, i) => {
    out.push(line(r));
    if (rules.has(i) && i < rows.length - 1) out.push(rule('├', '┼', '┤'));
  });
  out.push(rule('└', '┴', '┘'));
  return out.join('\n') + '\n';
}
