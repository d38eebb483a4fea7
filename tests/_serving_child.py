"""The serving child: a fresh process that imports only what TF Serving (or a TensorFlow-only user) has.

Image exports must load with `tensorflow` alone; text exports with `tensorflow`
and `tensorflow_text` (the tokenizer ops). `tfxfer.prediction` and
`recipes/predict.py` must need nothing more. This file is the child itself
(`python tests/_serving_child.py request.pkl reply.pkl`, standard library and
TensorFlow only) and the parent's helpers that start it. A request may:
  - run SavedModel signatures on tensors (`jobs`),
  - call functions, e.g. `tfxfer.prediction.predict_image_files` (`calls`),
  - run a script as `__main__`, e.g. `recipes/predict.py` (`script`).
The reply holds the results, the input specs of the signatures the jobs used,
and every module the child imported after `import tensorflow`: the tests assert
that Keras, keras-hub, TFDS and tfxfer's model code are not among them.
"""

import os
import pickle
import subprocess
import sys

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
CHILD = os.path.abspath(__file__)
# Top-level packages a serving process must not import: Keras (beyond what `import tensorflow`
# itself loads), the keras-hub/keras-nlp tokenizers and models, TFDS, and tfxfer.
HEAVY = ("keras", "keras_hub", "keras_nlp", "tensorflow_datasets", "tfxfer")
# tfxfer's training, data-loading and exporting code: what a prediction must not import. (The model
# classes come with `import tfxfer`, which registers them so that Keras can reload saved models; they
# load neither keras-hub nor anything Keras beyond what `import tensorflow` loads, as HEAVY checks.)
TFXFER_MODEL_CODE = ("tfxfer.training", "tfxfer.data.image_folders", "tfxfer.data.text_data",
                     "tfxfer.data.tfds_images", "tfxfer.data.text_tfds", "tfxfer.export.saved_model",
                     "tfxfer.export.serving", "tfxfer.export.text_serving", "tfxfer.export.tflite",
                     "tfxfer.export.warmup")


def run_child(folder, *, path=None, jobs=None, calls=None, script=None, imports=(), timeout=300):
    """The reply of one serving child: `{"results": {name: ...}, "modules": [...], "exit_code": ...}`.

    The reply also holds `input_specs`, `{signature name: {input name: (dtype name, shape list)}}` of
    each signature the jobs ran (e.g. `{"serving_default": {"texts": ("string", [None])}}`), and
    `tensorflow_modules`, the modules already loaded before the request (interpreter start-up and
    `import tensorflow`); `modules` are the ones the request imported after them.

    Args:
        folder: Path. Scratch folder for the request and reply files; the child's working folder.
        path: str. A SavedModel the `jobs` run on.
        jobs: dict. `{name: (signature_name, {input name: numpy array})}`; results are
            `{output name: numpy array}`. Inputs go through `tf.constant`: strings are bytes (or str)
            arrays, and an empty batch of strings is e.g. `np.array([], dtype=object)`.
        calls: dict. `{name: ("module:function", args, kwargs)}`; results are the return values.
        script: list of str. A Python file run as `__main__` (its folder first on sys.path, as
            `python script` does) with the rest as its arguments; `exit_code` is its exit code.
        imports: tuple of str. Modules the child imports besides tensorflow (e.g. tensorflow_text).
        timeout: float. Seconds before the child is killed.
    """
    request = {"path": str(path) if path else None, "jobs": jobs or {}, "calls": calls or {},
               "script": [str(arg) for arg in script] if script else None, "imports": list(imports)}
    (folder / "request.pkl").write_bytes(pickle.dumps(request))
    child = subprocess.run([sys.executable, CHILD, str(folder / "request.pkl"), str(folder / "reply.pkl")],
                           capture_output=True, text=True, env=ENV, cwd=folder, timeout=timeout)
    assert child.returncode == 0, child.stderr[-3000:]
    reply = pickle.loads((folder / "reply.pkl").read_bytes())
    return {**reply, "stdout": child.stdout, "stderr": child.stderr}


def heavy_modules(modules):
    """The modules of `HEAVY` packages in `modules`."""
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def model_code_modules(modules):
    """The modules of tfxfer's training, data-loading and exporting code in `modules`."""
    return sorted(m for m in modules if m.startswith(TFXFER_MODEL_CODE))


def run_in_tensorflow_only(folder, export_dir, jobs, imports=()):
    """`{name: outputs}` of `jobs` (`{name: (signature_name, inputs)}`) run on `export_dir` in a child.

    Asserts that the child imported none of Keras (beyond `import tensorflow`), keras-hub, TFDS or tfxfer.

    Args:
        folder: Path. Scratch folder for the job and result files.
        export_dir: str. The SavedModel.
        jobs: dict. Named `(signature_name, {input name: numpy array})` calls.
        imports: tuple of str. Modules the child imports besides tensorflow.
    """
    reply = run_child(folder, path=export_dir, jobs=jobs, imports=imports)
    assert heavy_modules(reply["modules"]) == []
    return reply["results"]


def run_script(script, *args, cwd, timeout=300):
    """The finished child process that ran Python source `script` with `args`, as TF Serving's stand-in.

    For children that are not requests of this file's (e.g. the fuzzer). The caller
    checks `returncode`: a crash (e.g. a native abort) is a result to assert on,
    not an exception here.

    Args:
        script: str. Python source; it should import tensorflow and little else.
        *args: str or Path. Its command-line arguments.
        cwd: Path. Working folder.
        timeout: float. Seconds before the child is killed (raises TimeoutExpired).
    """
    return subprocess.run([sys.executable, "-c", script, *map(str, args)],
                          capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout)


def _serve(request_path, reply_path):
    """The child: runs a request with TensorFlow (and only the requested imports)."""
    import importlib
    import runpy

    import tensorflow as tf

    baseline = set(sys.modules)
    with open(request_path, "rb") as f:
        request = pickle.load(f)
    for module in request["imports"]:
        importlib.import_module(module)  # e.g. tensorflow_text: registers the tokenizer ops
    results, input_specs = {}, {}
    if request["jobs"]:
        signatures = tf.saved_model.load(request["path"]).signatures
        for name, (signature_name, inputs) in request["jobs"].items():
            signature = signatures[signature_name]
            input_specs[signature_name] = {key: (spec.dtype.name, spec.shape.as_list())
                                           for key, spec in signature.structured_input_signature[1].items()}
            outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
            results[name] = {k: v.numpy() for k, v in outputs.items()}
    for name, (function, args, kwargs) in request["calls"].items():
        module, attribute = function.split(":")
        results[name] = getattr(importlib.import_module(module), attribute)(*args, **kwargs)
    exit_code = None
    if request["script"]:
        script, *arguments = request["script"]
        sys.argv = [script, *arguments]
        sys.path.insert(0, os.path.dirname(script))
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exit_:  # absl's app.run always ends with one
            exit_code = exit_.code
        sys.stdout.flush()
    modules = sorted(set(sys.modules) - baseline)
    with open(reply_path, "wb") as f:
        pickle.dump({"results": results, "input_specs": input_specs, "modules": modules,
                     "tensorflow_modules": sorted(baseline), "exit_code": exit_code}, f)


if __name__ == "__main__":
    _serve(*sys.argv[1:3])
