// The conformance and latency suite of `cargo medwasm bench --target browser|node`.
// Embedded in cargo-medwasm; the same code runs in headless Chromium and in Node.js.
//
// Tensors travel as base64 of little-endian float32 so that NaN and ±Infinity
// survive the trip through JSON.

const now = () => performance.now();

export function decodeF32(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const view = new DataView(bytes.buffer);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

export function encodeF32(values) {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(4 * i, v, true));
  let raw = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(raw);
}

/** `bytes` with a custom section `medwasm.bench-nonce` holding `nonce` appended. */
function withNonce(bytes, nonce) {
  const name = new TextEncoder().encode("medwasm.bench-nonce");
  const payload = new Uint8Array(1 + name.length + 4);
  payload[0] = name.length;
  payload.set(name, 1);
  new DataView(payload.buffer).setUint32(1 + name.length, nonce, true);
  const out = new Uint8Array(bytes.length + 2 + payload.length);
  out.set(bytes);
  out[bytes.length] = 0; // custom section id
  out[bytes.length + 1] = payload.length; // its size: one LEB128 byte, under 128
  out.set(payload, bytes.length + 2);
  return out;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Smallest step `performance.now()` takes here, in ms (Chromium coarsens it). */
function timerStep() {
  let step = Infinity;
  for (let i = 0; i < 50; i++) {
    const a = now();
    let b = now();
    while (b === a) b = now();
    step = Math.min(step, b - a);
  }
  return step;
}

/**
 * Runs every case once, then times cold starts and warm runs.
 *
 * `mod` is the detector's ES module, `wasmBytes` its `.wasm`; `job` is
 * `{ cases: [{ inputs: [base64] }], runs }`.
 */
export async function runSuite(mod, wasmBytes, job) {
  const { Detector, MedwasmError } = mod;
  const outcomes = [];
  let detector = await Detector.create({ wasm: wasmBytes });
  let timed = null;
  for (const c of job.cases) {
    const inputs = c.inputs.map(decodeF32);
    try {
      const r = detector.run(...inputs);
      // The score travels as f32 bits too: JSON has no NaN or ±Infinity.
      outcomes.push({ ok: { outputs: r.outputs.map(encodeF32), score: encodeF32([r.score]), label: r.label, alert: r.alert } });
      timed ??= inputs;
    } catch (err) {
      if (err instanceof MedwasmError) {
        outcomes.push({ error: { code: err.code, message: err.message } });
      } else {
        outcomes.push({ trap: String(err && err.message ? err.message : err) });
        // The instance may hold half-written state after a trap: start afresh.
        detector = await Detector.create({ wasm: wasmBytes });
      }
    }
  }
  const result = { outcomes, cold: [], cold_cached: [], samples: [], batch: 1, memory_bytes: detector.memoryBytes };
  if (timed === null || job.runs === 0) return result;

  // Cold start, "cached": instantiate a module compiled earlier (what a code cache
  // hands over), init and first inference. Its first instantiation pays one-time
  // engine set-up, so it is untimed; the compiled starts come after, so that their
  // background compilation does not slow these down.
  const compiled = await WebAssembly.compile(wasmBytes);
  (await Detector.create({ wasm: compiled })).run(...timed);
  for (let i = 0; i < 3; i++) {
    const t0 = now();
    const e = await Detector.create({ wasm: compiled });
    e.run(...timed);
    result.cold_cached.push(now() - t0);
  }
  // Cold start: compile from bytes, instantiate, init and first inference. V8 reuses
  // the code of a module whose bytes it compiled before, so each start gets bytes
  // made unique by a trailing custom section: every one really compiles.
  for (let i = 0; i < 3; i++) {
    const unique = withNonce(wasmBytes, (Date.now() + i) >>> 0);
    const t0 = now();
    const d = await Detector.create({ wasm: unique });
    d.run(...timed);
    result.cold.push(now() - t0);
  }

  // Warm-up: untimed runs until the engine has tiered up (100 ms, at least 10 runs).
  const warmStart = now();
  for (let i = 0; i < 10 || (now() - warmStart < 100 && i < 100000); i++) detector.run(...timed);

  // A coarse clock (Chromium rounds to 5-100 µs) cannot time one fast run, so each
  // sample times a batch long enough to be 50 clock steps, and is divided by it.
  const step = timerStep();
  const t0 = now();
  let probe = 0;
  while (now() - t0 < Math.max(10 * step, 1)) {
    detector.run(...timed);
    probe++;
  }
  const perRun = (now() - t0) / probe;
  const batch = Math.max(1, Math.ceil((50 * step) / perRun));
  result.batch = batch;
  result.timer_step_ms = step;
  for (let s = 0; s < job.runs; s++) {
    const a = now();
    for (let k = 0; k < batch; k++) detector.run(...timed);
    result.samples.push((now() - a) / batch);
  }
  result.memory_bytes = detector.memoryBytes;
  result.cold_median = median(result.cold);
  return result;
}
