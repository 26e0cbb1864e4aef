/**
 * Text helpers of the line editor: where a terminal escape sequence ends, the common
 * prefix of completions, and laying completions out in columns.
 *
 * @module
 */

/**
 * How many characters the escape sequence at `index` spans: ESC [ params final, ESC O x,
 * or ESC x (Alt-x, skipped); 0 if it is not complete yet.
 */
export function escapeLength(text: string, index: number): number {
  const next = text[index + 1];
  if (next === undefined) return 0;
  if (next === "O") return text[index + 2] === undefined ? 0 : 3;
  if (next !== "[") return 2;
  for (let end = index + 2; end < text.length; end++) {
    const code = text.charCodeAt(end);
    if (code >= 0x40 && code <= 0x7e) return end - index + 1;
  }
  return 0;
}

/** The longest prefix every string shares. */
export function commonPrefix(strings: string[]): string {
  let prefix = strings[0] ?? "";
  for (const each of strings) {
    while (!each.startsWith(prefix)) prefix = prefix.slice(0, -1);
  }
  return prefix;
}

/** Candidates in columns across `width`, like bash's completion list. */
export function layOut(items: string[], width: number): string {
  const cell = Math.max(...items.map((item) => item.length)) + 2;
  const perLine = Math.max(1, Math.floor(width / cell));
  const lines: string[] = [];
  for (let start = 0; start < items.length; start += perLine) {
    lines.push(
      items.slice(start, start + perLine).map((item) => item.padEnd(cell)).join("").trimEnd(),
    );
  }
  return lines.join("\n");
}
