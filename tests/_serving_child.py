"""Runs SavedModel signatures in a fresh process that imports only what TF Serving links.

Image exports must load with `tensorflow` alone; text exports with `tensorflow`
and `tensorflow_text` (the tokenizer ops). The child reports which tfxfer,
keras-hub or keras-nlp modules it imported: none is the point of the test.
"""

import os
import pickle
import subprocess
import sys
import textwrap

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}

CHILD = textwrap.dedent("""
    import importlib, pickle, sys
    import tensorflow as tf

    jobs = pickle.load(open(sys.argv[1], "rb"))
    for module in jobs["imports"]:
        importlib.import_module(module)  # e.g. tensorflow_text: registers the tokenizer ops
    model = tf.saved_model.load(jobs["path"])
    results = {}
    for name, (signature_name, inputs) in jobs["jobs"].items():
        outputs = model.signatures[signature_name](**{k: tf.constant(v) for k, v in inputs.items()})
        results[name] = {k: v.numpy() for k, v in outputs.items()}
    modules = sorted(m for m in sys.modules if m.split(".")[0] in ("keras_hub", "keras_nlp", "tfxfer"))
    pickle.dump({"results": results, "modules": modules}, open(sys.argv[2], "wb"))
""")


def run_in_tensorflow_only(folder, export_dir, jobs, imports=()):
    """`{name: outputs}` of `jobs` (`{name: (signature_name, inputs)}`) run on `export_dir` in a child.

    Args:
        folder: Path. Scratch folder for the job and result files.
        export_dir: str. The SavedModel.
        jobs: dict. Named `(signature_name, {input name: numpy array})` calls.
        imports: tuple of str. Modules the child imports besides tensorflow.
    """
    (folder / "jobs.pkl").write_bytes(pickle.dumps({"path": str(export_dir), "jobs": jobs, "imports": imports}))
    child = run_script(CHILD, folder / "jobs.pkl", folder / "out.pkl", cwd=folder)
    assert child.returncode == 0, child.stderr[-3000:]
    reply = pickle.loads((folder / "out.pkl").read_bytes())
    assert reply["modules"] == []
    return reply["results"]


def run_script(script, *args, cwd, timeout=300):
    """The finished child process that ran Python source `script` with `args`, as TF Serving's stand-in.

    The caller checks `returncode`: a crash (e.g. a native abort) is a result
    to assert on, not an exception here.

    Args:
        script: str. Python source; it should import tensorflow and little else.
        *args: str or Path. Its command-line arguments.
        cwd: Path. Working folder.
        timeout: float. Seconds before the child is killed (raises TimeoutExpired).
    """
    return subprocess.run([sys.executable, "-c", script, *map(str, args)],
                          capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout)
