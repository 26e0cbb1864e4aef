/**
 * Finds a key given twice in one JSON object. `JSON.parse` keeps the last silently, so a
 * definition file with two `"memory"` lines would start a machine other than the one its
 * reader sees first; the xl.cfg reader refuses duplicates for the same reason.
 *
 * @module
 */

/** A key that one object of the text gives more than once. */
export interface DuplicateKey {
  /** The key, as JSON decodes it. */
  key: string;
  /** JSON path of the object that holds it ("" for the top level, "disks[1]"). */
  path: string;
}

interface Frame {
  /** The object's keys so far, or undefined for an array. */
  keys?: Set<string>;
  /** The path of this container. */
  path: string;
  /** The key being read (objects) or the index of the current element (arrays). */
  member: string | number;
  /** In an object: whether the next string is a key. */
  expectKey: boolean;
}

function childPath(frame: Frame): string {
  if (typeof frame.member === "number") return `${frame.path}[${frame.member}]`;
  const name = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(frame.member)
    ? frame.member
    : JSON.stringify(frame.member);
  return frame.path === "" ? name : `${frame.path}.${name}`;
}

/**
 * The first duplicate key in `text`, or undefined. `text` must be JSON that `JSON.parse`
 * accepts (call this after it): the scan trusts the syntax and only follows strings,
 * objects, arrays and commas.
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  const strings = /"[^"\\]*(?:\\.[^"\\]*)*"/y;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    const top = stack.at(-1);
    if (char === '"') {
      strings.lastIndex = i;
      const literal = strings.exec(text)![0];
      i += literal.length - 1;
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(literal) as string;
        if (top.keys.has(key)) return { key, path: top.path };
        top.keys.add(key);
        top.member = key;
        top.expectKey = false;
      }
    } else if (char === "{" || char === "[") {
      const path = top ? childPath(top) : "";
      stack.push(
        char === "{"
          ? { keys: new Set(), path, member: "", expectKey: true }
          : { path, member: 0, expectKey: false },
      );
    } else if (char === "}" || char === "]") {
      stack.pop();
    } else if (char === "," && top) {
      if (top.keys) top.expectKey = true;
      else top.member = (top.member as number) + 1;
    }
  }
  return undefined;
}
