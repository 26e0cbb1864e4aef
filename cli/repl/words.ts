/**
 * Splitting a REPL line into arguments as a shell would (whitespace, 'single' and
 * "double" quotes, backslash escapes), keeping where each word starts for completion.
 *
 * @module
 */

/** One argument and where it starts in the line. */
export interface Word {
  text: string;
  start: number;
}

/** The words of `line`; throws on an unterminated quote. */
export function splitWords(line: string): Word[] {
  const words: Word[] = [];
  let current: Word | undefined;
  let quote: string | undefined;
  const chars = [...line];
  for (let index = 0; index < chars.length; index++) {
    const char = chars[index];
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      else if (char === "\\" && quote === '"' && index + 1 < chars.length) {
        current!.text += chars[++index];
      } else current!.text += char;
      continue;
    }
    if (char === " " || char === "\t") {
      if (current) words.push(current);
      current = undefined;
      continue;
    }
    current ??= { text: "", start: index };
    if (char === "'" || char === '"') quote = char;
    else if (char === "\\" && index + 1 < chars.length) current.text += chars[++index];
    else current.text += char;
  }
  if (quote !== undefined) throw new Error(`Unterminated ${quote} quote; close it`);
  if (current) words.push(current);
  return words;
}

/**
 * The words before the cursor and the (possibly empty) word being typed at it, for
 * completion; an unterminated quote is tolerated there.
 */
export function wordsAtCursor(line: string, cursor: number): { before: string[]; current: Word } {
  const head = [...line].slice(0, cursor).join("");
  let words: Word[];
  try {
    words = splitWords(head);
  } catch {
    words = splitWords(head + (head.lastIndexOf('"') > head.lastIndexOf("'") ? '"' : "'"));
  }
  const endsInSpace = head.length === 0 || /\s$/.test(head);
  if (endsInSpace) {
    return { before: words.map((w) => w.text), current: { text: "", start: cursor } };
  }
  const current = words.pop()!;
  return { before: words.map((w) => w.text), current };
}
