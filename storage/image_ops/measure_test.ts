/** measureImage() gives qemu-img measure's figures, case by case. */
import assert from "node:assert/strict";
import { measureImage, type MeasureOptions } from "./measure.ts";

function run(...args: string[]): string {
  const r = new Deno.Command("qemu-img", { args }).outputSync();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return new TextDecoder().decode(r.stdout);
}

function qemuMeasure(options: MeasureOptions): { required: number; fullyAllocated: number } {
  const o = [
    options.clusterSize !== undefined ? `cluster_size=${options.clusterSize}` : "",
    options.preallocation !== undefined ? `preallocation=${options.preallocation}` : "",
    options.backingFile !== undefined ? `backing_file=${options.backingFile}` : "",
  ].filter((x) => x !== "").join(",");
  const json = JSON.parse(run(
    "measure",
    "--output=json",
    "-O",
    options.format,
    ...(o ? ["-o", o] : []),
    ...(options.size !== undefined ? ["--size", String(options.size)] : [options.source!]),
  ));
  return { required: json.required, fullyAllocated: json["fully-allocated"] };
}

Deno.test("measureImage() matches qemu-img measure for sizes, sources, cluster sizes and preallocation", () => {
  const dir = Deno.makeTempDirSync({ prefix: "measure_" });
  try {
    const raw = `${dir}/data.raw`;
    run("create", "-q", "-f", "raw", raw, "300M");
    const io = new Deno.Command("qemu-io", {
      args: ["-f", "raw", "-c", "write -P 1 1000000 3M", "-c", "write -P 2 200M 17k", raw],
    }).outputSync();
    assert.equal(io.code, 0);
    const qcow2 = `${dir}/data.qcow2`;
    run("convert", "-O", "qcow2", "-o", "cluster_size=4k", raw, qcow2);
    const cases: MeasureOptions[] = [
      { format: "qcow2", size: 10 * 2 ** 30 },
      { format: "qcow2", size: 1000 },
      { format: "qcow2", size: 3 * 2 ** 40, clusterSize: 2 ** 21 },
      { format: "qcow2", size: 2 ** 30, clusterSize: 512, preallocation: "full" },
      { format: "raw", size: 1000 },
      { format: "qcow2", source: raw },
      { format: "qcow2", source: raw, clusterSize: 4096 },
      { format: "qcow2", source: qcow2, clusterSize: 2 ** 21 },
      { format: "qcow2", source: qcow2, preallocation: "metadata" },
      { format: "qcow2", source: qcow2, backingFile: "data.raw" },
      { format: "raw", source: qcow2 },
    ];
    for (const options of cases) {
      const { required, fullyAllocated } = measureImage(options);
      assert.deepEqual({ required, fullyAllocated }, qemuMeasure(options), JSON.stringify(options));
    }
    assert.throws(() => measureImage({ format: "qcow2" }), /either a size or a source/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
