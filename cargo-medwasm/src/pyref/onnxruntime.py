# onnxruntime (CPU, one thread, its default graph optimizations: the fused int8
# kernels a deployed quantized model runs) on an `.onnx` model, for cargo-medwasm
# (src/pyref.rs documents the protocol). Exit code 3: the package cannot be imported.
import sys

try:
    import numpy as np
    import onnxruntime as ort
except Exception as e:  # an absent package, or one that fails to load
    sys.stderr.write(f"{type(e).__name__}: {e}\n")
    sys.exit(3)
if len(sys.argv) == 2 and sys.argv[1] == "--probe":
    print(ort.__version__)
    sys.exit(0)
model, out_dir, n_in = sys.argv[1], sys.argv[2], int(sys.argv[3])
inputs = [np.load(p) for p in sys.argv[4 : 4 + n_in]]
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
ins, outs = session.get_inputs(), session.get_outputs()
if len(ins) != n_in:
    sys.exit(f"the model has {len(ins)} inputs, {n_in} were given")
types = {"tensor(float)": np.float32, "tensor(int8)": np.int8}
for d in ins:
    if d.type not in types:
        sys.exit(f"input {d.name} is {d.type}: only float32 and int8 graph inputs are run here")
for d, x in zip(ins, inputs):
    if x.dtype != types[d.type]:
        sys.exit(f"input {d.name} is {d.type} but {x.dtype.name} values were given; this is a bug in cargo-medwasm")
results = [[] for _ in outs]
for s in range(inputs[0].shape[0]):
    # Each sample already has the shape the model was converted with.
    feed = {d.name: np.ascontiguousarray(x[s]) for d, x in zip(ins, inputs)}
    for k, y in enumerate(session.run(None, feed)):
        y = np.asarray(y)
        # Outputs of other types (an argmax index ...) are compared as float32,
        # which is how the detector returns them.
        if y.dtype not in (np.float32, np.int8):
            y = y.astype(np.float32)
        results[k].append(y.reshape(-1))
for k, r in enumerate(results):
    np.save(f"{out_dir}/out{k}.npy", np.stack(r))
