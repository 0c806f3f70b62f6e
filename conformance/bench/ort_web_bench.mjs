//! Warm latency of onnxruntime-web (wasm backend, SIMD, 1 thread) in Node, for `compare.py`.
//
// Usage: node ort_web_bench.mjs <model.onnx> <input.bin> <dtype> <shape> <runs> <floor.onnx>
//
// `input.bin` holds one sample's raw little-endian values (`dtype` float32 or int8,
// `shape` like 1,640), written by compare.py from the vector the detector was built
// from. `floor.onnx` is an Identity model on the same input: what a call costs here
// with no work in it. Prints JSON on stdout in the units and names of the `latency`
// object of `cargo medwasm bench --json`, plus the first output (for compare.py's
// check that the measured session computes the model) and which wasm file ran.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

import * as ort from "onnxruntime-web";

// Untimed runs before the timed ones and start-ups timed, as compare.py's other
// runtimes do.
const WARMUP_RUNS = 10;
const COLD_STARTS = 3;

const [modelPath, inputPath, dtype, shapeArg, runsArg, floorPath] = process.argv.slice(2);
if (!floorPath) {
  console.error("usage: node ort_web_bench.mjs <model.onnx> <input.bin> <dtype> <shape> <runs> <floor.onnx>");
  process.exit(2);
}
const runs = Number.parseInt(runsArg, 10);
if (!(runs > 0)) {
  console.error(`error: \`${runsArg}\` is not a number of runs; pass 1 or more`);
  process.exit(2);
}
const shape = shapeArg.split(",").map((d) => Number.parseInt(d, 10));
const bytes = readFileSync(inputPath);
const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
const data = {
  float32: () => new Float32Array(buffer),
  int8: () => new Int8Array(buffer),
}[dtype];
if (!data) {
  console.error(`error: input dtype \`${dtype}\` is not handled; pass float32 or int8`);
  process.exit(2);
}
const input = new ort.Tensor(dtype, data(), shape);

// The wasm file is named, not left to the loader's choice, so the report can say
// which one ran: the plain SIMD build (its name says "threaded" since 1.19, which
// every build is; with numThreads = 1 no worker is started).
const require = createRequire(import.meta.url);
const dist = dirname(require.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm"));
const wasmFile = join(dist, "ort-wasm-simd-threaded.wasm");
const mjsFile = join(dist, "ort-wasm-simd-threaded.mjs");
ort.env.wasm.wasmPaths = { wasm: pathToFileURL(wasmFile).href, mjs: pathToFileURL(mjsFile).href };
ort.env.wasm.numThreads = 1;
ort.env.wasm.simd = true;
ort.env.wasm.proxy = false;
ort.env.logLevel = "error";

const options = {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "all",
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: "sequential",
};

function percentiles(samples) {
  // Picked the way `cargo_medwasm::report::percentiles` and compare.py do.
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(Math.round((s.length - 1) * q), s.length - 1)];
  return { median_us: at(0.5), p95_us: at(0.95), p99_us: at(0.99), runs: s.length };
}

const now = () => process.hrtime.bigint();
const us = (start) => Number(now() - start) / 1e3;

async function warm(session, feeds) {
  for (let i = 0; i < WARMUP_RUNS; i++) await session.run(feeds);
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const start = now();
    await session.run(feeds);
    samples.push(us(start));
  }
  return percentiles(samples);
}

// The first session of the process also fetches, compiles and instantiates the wasm
// runtime; later sessions reuse it. Both are reported.
let start = now();
const session = await ort.InferenceSession.create(modelPath, options);
const feeds = { [session.inputNames[0]]: input };
const first = await session.run(feeds);
const firstSessionUs = us(start);
const output = first[session.outputNames[0]];

const result = await warm(session, feeds);

const colds = [];
for (let i = 0; i < COLD_STARTS; i++) {
  start = now();
  const s = await ort.InferenceSession.create(modelPath, options);
  await s.run(feeds);
  colds.push(us(start));
  await s.release();
}
colds.sort((a, b) => a - b);

const floorSession = await ort.InferenceSession.create(floorPath, options);
const floor = await warm(floorSession, { [floorSession.inputNames[0]]: input });

const wasm = readFileSync(wasmFile);
console.log(
  JSON.stringify(
    {
      ...result,
      warmup_runs: WARMUP_RUNS,
      cold_start_us: colds[Math.floor(colds.length / 2)],
      first_session_us: firstSessionUs,
      js_floor_median_us: floor.median_us,
      runtime: `onnxruntime-web ${ort.env.versions.web} (Node ${process.version}, wasm backend, ${wasmFile.split("/").pop()}, SIMD, 1 thread)`,
      wasm_file: wasmFile,
      wasm_bytes: wasm.length,
      wasm_sha256: createHash("sha256").update(wasm).digest("hex"),
      env: { numThreads: ort.env.wasm.numThreads, simd: ort.env.wasm.simd, proxy: ort.env.wasm.proxy },
      output_dtype: output.type,
      output: Array.from(output.data, Number),
    },
    null,
    1,
  ),
);
