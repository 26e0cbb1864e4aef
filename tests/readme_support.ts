/**
 * README.md's fenced blocks, for the tests that compare what it shows with what the
 * program prints (tests/readme_output_test.ts, tests/walkthrough_test.ts).
 *
 * @module
 */

const README = new URL("../README.md", import.meta.url);

/**
 * The lines of the one fenced block of README.md whose first line starts with `first`;
 * a README without such a block, or with two, fails the test.
 */
export async function readmeBlock(first: string): Promise<string[]> {
  const text = await Deno.readTextFile(README);
  const blocks = [...text.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)].map((match) =>
    match[1].replace(/\n$/, "").split("\n")
  );
  const found = blocks.filter((lines) => lines[0].startsWith(first));
  if (found.length !== 1) {
    throw new Error(`README.md has ${found.length} blocks starting with '${first}', not one`);
  }
  return found[0];
}
