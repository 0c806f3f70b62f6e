# LiteRT's reference kernels (BUILTIN_REF, one thread) on a `.tflite` model, for
# cargo-medwasm (src/pyref.rs documents the protocol). Exit code 3: the package
# cannot be imported.
import sys

try:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except Exception as e:  # an absent package, or one that fails to load
    sys.stderr.write(f"{type(e).__name__}: {e}\n")
    sys.exit(3)
if len(sys.argv) == 2 and sys.argv[1] == "--probe":
    from importlib.metadata import version

    print(version("ai-edge-litert"))
    sys.exit(0)
model, out_dir, n_in = sys.argv[1], sys.argv[2], int(sys.argv[3])
inputs = [np.load(p) for p in sys.argv[4 : 4 + n_in]]
it = Interpreter(
    model_path=model,
    num_threads=1,
    experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
)
it.allocate_tensors()
ins, outs = it.get_input_details(), it.get_output_details()
if len(ins) != n_in:
    sys.exit(f"the model has {len(ins)} inputs, {n_in} were given")
for d in ins + outs:
    if d["dtype"] not in (np.float32, np.int8):
        sys.exit(f"tensor {d['name']} is {np.dtype(d['dtype']).name}: only float32 and int8 graph inputs and outputs are run here")
for d, x in zip(ins, inputs):
    if x.dtype != d["dtype"]:
        sys.exit(f"input {d['name']} is {np.dtype(d['dtype']).name} but {x.dtype.name} values were given; this is a bug in cargo-medwasm")
results = [[] for _ in outs]
for s in range(inputs[0].shape[0]):
    for d, x in zip(ins, inputs):
        it.set_tensor(d["index"], np.asarray(x[s]).reshape(d["shape"]))
    it.invoke()
    for k, d in enumerate(outs):
        results[k].append(np.array(it.get_tensor(d["index"])).reshape(-1))
for k, r in enumerate(results):
    np.save(f"{out_dir}/out{k}.npy", np.stack(r))
