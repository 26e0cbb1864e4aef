/**
 * "Did you mean ...?" for mistyped verbs and options: the closest known word by edit
 * distance (transpositions count as one edit, as people type), offered only when it is
 * close enough to be a likely typo.
 *
 * @module
 */

/** Optimal-string-alignment distance between `a` and `b`. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const columns = b.length + 1;
  const table: number[][] = Array.from({ length: rows }, () => new Array(columns).fill(0));
  for (let i = 0; i < rows; i++) table[i][0] = i;
  for (let j = 0; j < columns; j++) table[0][j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < columns; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      table[i][j] = Math.min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        table[i][j] = Math.min(table[i][j], table[i - 2][j - 2] + 1);
      }
    }
  }
  return table[rows - 1][columns - 1];
}

/**
 * The known word closest to `typed`, if it is within a third of the word's length (at
 * least one edit) or `typed` is a unique prefix of it; undefined otherwise.
 */
export function closestWord(typed: string, known: readonly string[]): string | undefined {
  const prefixed = known.filter((word) => word.startsWith(typed));
  if (typed.length >= 2 && prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const word of known) {
    const distance = editDistance(typed, word);
    if (distance < bestDistance) [best, bestDistance] = [word, distance];
  }
  const allowed = Math.max(1, Math.floor(Math.max(typed.length, best?.length ?? 0) / 3));
  return bestDistance <= allowed ? best : undefined;
}

/** " (did you mean 'X'?)" for a message, or "" when nothing is close. */
export function didYouMean(typed: string, known: readonly string[]): string {
  const word = closestWord(typed, known);
  return word === undefined ? "" : ` (did you mean '${word}'?)`;
}
