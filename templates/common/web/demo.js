// Demo page script: loads the detector package, runs it on the project's sample
// vectors when Run is pressed, and shows each finding and the latency.
// `cargo medwasm serve` serves this folder, the package (`pkg/`) and `demo.json`
// (the sample vectors from `vectors/` and where the package's module is).

const status = document.getElementById("status");
const button = document.getElementById("run");
const table = document.getElementById("results");

/** Base64 of little-endian float32 (how demo.json carries tensors) to a Float32Array. */
function decode(text) {
  const raw = atob(text);
  const view = new DataView(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) view.setUint8(i, raw.charCodeAt(i));
  return Float32Array.from({ length: raw.length / 4 }, (_, i) => view.getFloat32(4 * i, true));
}

/** Whether every element of `got` is within the project's tolerance of `want`. */
function agrees(got, want, tolerance) {
  return got.length === want.length &&
    got.every((g, i) => Math.abs(g - want[i]) <= tolerance.abs + tolerance.rel * Math.abs(want[i]));
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

let detector;
let config;

async function load() {
  config = await (await fetch("./demo.json")).json();
  const { Detector } = await import(config.module);
  detector = await Detector.create();
  document.getElementById("name").textContent = config.name;
  if (config.vectors.length === 0) {
    status.textContent = `Loaded, but there are no sample vectors: ${config.note}`;
    return;
  }
  status.textContent = `Ready: ${config.vectors.length} sample vectors. Press Run.`;
  button.disabled = false;
}

function run() {
  const body = table.tBodies[0];
  body.replaceChildren();
  let alerts = 0;
  let checked = 0;
  let matched = 0;
  let first = null;
  config.vectors.forEach((vector, index) => {
    const inputs = vector.inputs.map(decode);
    const row = body.insertRow();
    cell(row, String(index));
    try {
      const result = detector.run(...inputs);
      first ??= inputs;
      if (result.alert) alerts++;
      row.dataset.alert = String(result.alert);
      cell(row, result.score.toPrecision(4));
      cell(row, String(result.label));
      cell(row, result.alert ? "ALERT" : "no");
      const expected = vector.expected.map((e) => (e === null ? null : decode(e)));
      if (expected.some((e) => e !== null)) {
        checked++;
        const ok = expected.every((want, j) => want === null || agrees(result.outputs[j], want, config.tolerance));
        if (ok) matched++;
        cell(row, ok ? "yes" : "NO");
      } else {
        cell(row, "-");
      }
    } catch (err) {
      row.dataset.alert = "error";
      cell(row, `${err.name}: ${err.message}`);
    }
  });
  table.hidden = false;

  let latency = "";
  if (first !== null) {
    // The engine first runs baseline code and optimizes hot functions after a while:
    // warm up for 100 ms, then time a batch (one run is shorter than a clock tick).
    const warm = performance.now();
    while (performance.now() - warm < 100) detector.run(...first);
    const runs = 1000;
    const start = performance.now();
    for (let i = 0; i < runs; i++) detector.run(...first);
    const micros = ((performance.now() - start) * 1000) / runs;
    latency = `; latency ${micros.toFixed(1)} µs per run (mean of ${runs} after warm-up)`;
  }
  const match = checked > 0 ? `, ${matched} of ${checked} match the expected outputs` : "";
  status.textContent = `Done: ${config.vectors.length} vectors, ${alerts} alerts${match}${latency}`;
  status.dataset.state = "done";
}

button.addEventListener("click", () => {
  try {
    run();
  } catch (err) {
    status.textContent = `Error: ${err.message}`;
    console.error(err);
  }
});

load().catch((err) => {
  status.textContent = `Error: ${err.message}`;
  console.error(err);
});
