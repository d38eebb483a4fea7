"""Predictions from an exported SavedModel, with TensorFlow (and Keras, which it installs).

The export's `serving_default` signature does all the work (decode, resize,
model, class names), so this module never builds a Keras model: it is what a
user without the training stack can run, and what TF Serving runs. Besides the
model types that `import tfxfer` registers with Keras, it loads of tfxfer only
constants and TensorFlow-only helpers (plus tensorflow_text when a text export
needs its ops): no keras-hub, TFDS, data loaders, training or export code
(`tests/test_deployment.py` checks it in a fresh process). It reads models and
files through `tf.io.gfile`, so any filesystem TensorFlow supports works (`gs://...`).
"""

import dataclasses
import io
import json
import os
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data import text_encoding
from tfxfer.data.constants import IMAGE_EXTENSIONS, LABELS_FILE
from tfxfer.data.layout import is_hidden
from tfxfer.errors import ConfigError, MissingFileError
from tfxfer.export import layout, versioning
from tfxfer.tasks import HeadKind

IMAGE, TEXT = "image", "text"
LABELS_ASSET = os.path.join(layout.ASSETS_DIR, LABELS_FILE)
METADATA_ASSET = os.path.join(layout.EXTRA_ASSETS_DIR, layout.METADATA_FILE)
_SHOWN_CHARACTERS = 200  # of a value in an error message: a whole document passed as texts would flood it
_PATHS_IN_WARNING = 5  # skipped files a warning names; `Predictions.skipped_files` lists them all


@dataclasses.dataclass
class Prediction:
    """The best classes for one input.

    Attributes:
        source: str. The input's file path, or the text itself.
        top_k: list[tuple[str, float]]. (class name, probability), best first;
            empty for a multi-task export (see `tasks`).
        tasks: dict | None. A multi-task export's answer per task (in task name order),
            `{task: [(class name, probability)]}` best first: a one-label task's top-k classes, a
            multi-label task's classes above the threshold (at most k, maybe none).
            None for a one-head export.
    """

    source: str
    top_k: list[tuple[str, float]]
    tasks: dict[str, list[tuple[str, float]]] | None = None


class Predictions(list):
    """The list of `Prediction`s `predict_image_files` and `predict_texts` return, one per input predicted.

    Attributes:
        skipped_files: list[str]. Image files found in the folders given that the model
            cannot decode (truncated, corrupt, or not an image despite the extension) or that
            cannot be read (a broken link): left out of the list, in the order they were found.
            Empty for texts.
    """

    def __init__(self, predictions=(), skipped_files=()):
        super().__init__(predictions)
        self.skipped_files = list(skipped_files)


@dataclasses.dataclass(frozen=True)
class ServedTask:
    """One task of a multi-task export, as its metadata describes it.

    Attributes:
        head: str. `"multiclass"`, `"binary"` or `"multilabel"`.
        class_names: list[str]. In the order of its probability columns.
    """

    head: str
    class_names: list[str]

    @property
    def multi_label(self) -> bool:
        """Whether an input may carry several of the task's classes (answered by a threshold)."""
        return self.head == HeadKind.MULTILABEL


def refuse_single_string(values, argument: str, items: str, item: str) -> None:
    """Raises a ConfigError if `values`, an argument that takes a sequence, is one str, bytes or path.

    Iterating a str gives its characters: `predict_texts(model, "good film")` would answer for "g", "o", ...

    Args:
        values: The argument's value.
        argument: str. Its name, for the message.
        items: str. What the sequence holds, e.g. "texts".
        item: str. One of them, for the example of the fix, e.g. "text".
    """
    if isinstance(values, (str, bytes, os.PathLike)):
        why = f" (which would be read as one {item} per character)" if isinstance(values, (str, bytes)) else ""
        shown = repr(values) if len(repr(values)) <= _SHOWN_CHARACTERS else f"{repr(values)[:_SHOWN_CHARACTERS]}..."
        raise ConfigError(
            f"{argument} must be a list of {items}, not a single {type(values).__name__}{why}. "
            f"Pass a list of {items}, e.g. [{item}]. Received: {argument}={shown}")


def image_files(inputs: Sequence[str]) -> list[str]:
    """Image files named by `inputs`: files as given, folders searched recursively (sorted).

    A folder's images are listed as the training loaders list a class folder's: names ending in
    `IMAGE_EXTENSIONS` (any case), hidden files and folders (tool clutter such as "._photo.jpg"
    or ".ipynb_checkpoints/") left out; its other files are counted in a warning (`warn_other_files`).

    inputs: sequence of str. Image files and/or folders holding images.

    Raises:
        ConfigError: `inputs` is a single str (or bytes, or path) rather than a list; or it is empty.
        MissingFileError: a path that does not exist, or a folder without images.
    """
    return [path for path, _ in _listed_images(inputs)]


def _listed_images(inputs):
    """`(path, named)` of each image file of `image_files(inputs)`: `named` when the path was given itself,
    not found in a folder (a file the user named cannot be skipped without a word)."""
    refuse_single_string(inputs, "inputs", "image files or folders", "path")
    listed = []
    for path in inputs:
        if tf.io.gfile.isdir(path):
            found, others = scan_image_folder(path)
            if not found:
                raise MissingFileError(f"No {'/'.join(IMAGE_EXTENSIONS)} files in folder. Received: {path!r}")
            warn_other_files(others, path)
            listed += [(image, False) for image in found]
        elif tf.io.gfile.exists(path):
            listed.append((path, True))
        else:
            raise MissingFileError(f"Expected an image file or a folder of images. Received: {path!r}")
    if not listed:
        raise ConfigError("Pass at least one image file or folder. Received: none")
    return listed


def scan_image_folder(folder: str) -> tuple[list[str], list[str]]:
    """`(image files, other files)` under `folder`, recursively and each sorted, hidden files and folders
    left out of both: the listing rules of the training loaders (`tfxfer.data.layout`).

    folder: str. A local folder or one on any filesystem TensorFlow reads.
    """
    images, others = [], []
    for root, subfolders, names in tf.io.gfile.walk(folder):
        subfolders[:] = [name for name in subfolders if not is_hidden(name)]  # walk() follows this list.
        for name in names:
            if not is_hidden(name):
                (images if name.lower().endswith(IMAGE_EXTENSIONS) else others).append(os.path.join(root, name))
    return sorted(images), sorted(others)


def warn_other_files(others: Sequence[str], folder: str) -> None:
    """Logs the files of `folder` left out for their name's extension (`scan_image_folder`'s others), naming a
    few: an image in another format (.tiff, .heic) would otherwise get no answer without a word."""
    if others:
        logging.warning("Skipping %d files of %s that are not read as images: only names ending in %s (any case) "
                        "are. Convert images in other formats to one of these. Skipped e.g. %s",
                        len(others), folder, ", ".join(IMAGE_EXTENSIONS), "; ".join(others[:_PATHS_IN_WARNING]))


def class_names(version_dir: str) -> list[str]:
    """The class names in a tfxfer export's `assets/labels.txt`, in class-id order.

    version_dir: str. A SavedModel version folder written by `export_saved_model`.
    """
    path = os.path.join(version_dir, LABELS_ASSET)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise MissingFileError(
            f"Expected the class names in {path!r}, as tfxfer's export_saved_model writes them. "
            f"Received: a SavedModel without it at {version_dir!r}"
        )
    return _read(path).decode("utf-8").splitlines()


def served_tasks(version_dir: str) -> dict[str, ServedTask] | None:
    """The tasks of a multi-task export, from its metadata's `tasks`; None for a one-head export.

    A one-head export has `assets/labels.txt` (and its metadata no `tasks`).

    version_dir: str. A SavedModel version folder written by `export_saved_model`.
    """
    path = os.path.join(version_dir, METADATA_ASSET)
    if tf.io.gfile.exists(os.path.join(version_dir, LABELS_ASSET)) or not tf.io.gfile.exists(path):
        return None
    try:
        tasks = json.loads(_read(path).decode("utf-8")).get("tasks")
        return {name: ServedTask(str(entry["head"]), [str(n) for n in entry["class_names"]])
                for name, entry in tasks.items()} if tasks else None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(
            f"Expected the metadata of a tfxfer export, whose tasks entry is {{task: {{\"head\": ..., "
            f"\"class_names\": [...]}}}}; export the model again. Received: {path!r} ({error!r})"
        ) from error


def predict_image_files(
    model_dir: "str | ServingModel", paths: Sequence[str], *, top_k: int = 5, batch_size: int = 32,
    threshold: float = 0.5,
) -> Predictions:
    """Runs the export's `serving_default` signature on image files; returns their top-k classes.

    Images of the folders given that the model cannot decode are skipped, not fatal (as evaluation
    and the training loaders skip them): a warning names a few, and the result's `skipped_files`
    lists them all. An image file named in `paths` itself that does not decode is an error.

    Args:
        model_dir: str | ServingModel. A version folder, or a model's base folder (meaning its latest version);
            or the export already loaded by `load_serving_model`.
        paths: sequence of str. Image files, and/or folders searched recursively for images
            (sorted, as `image_files` lists them): one Prediction per image file the model decodes.
        top_k: int. Classes per image, best first (capped at the number of classes).
        batch_size: int. Images per call of the signature.
        threshold: float. Multi-task exports: the probability above which a multi-label
            task's class is part of its answer (see `Prediction.tasks`).

    Raises:
        ConfigError: `paths` is a single str (pass `[path]`) or empty; top_k, batch_size or threshold out of
            range; a text export; an image file named in `paths` that the export cannot decode, or folders
            of which it decodes no image.
        MissingFileError: a path that does not exist, a folder without images, or no export at `model_dir`.
    """
    refuse_single_string(paths, "paths", "image paths", "path")
    return _predict(model_dir, IMAGE, paths, top_k=top_k, batch_size=batch_size, threshold=threshold)


def predict_texts(
    model_dir: "str | ServingModel", texts: Sequence[str], *, top_k: int = 5, batch_size: int = 32,
    threshold: float = 0.5,
) -> Predictions:
    """Runs a text export's `serving_default` signature on raw texts; returns their top-k classes.

    Args:
        model_dir: str | ServingModel. A version folder, or a model's base folder (meaning its latest version);
            or the export already loaded by `load_serving_model`.
        texts: sequence of str. One text per prediction (its `source`).
        top_k: int. Classes per text, best first (capped at the number of classes).
        batch_size: int. Texts per call of the signature.
        threshold: float. Multi-task exports: the probability above which a multi-label
            task's class is part of its answer (see `Prediction.tasks`).

    Raises:
        ConfigError: `texts` is a single str (pass `[text]`) or empty; top_k, batch_size or threshold out of
            range; an image export.
        MissingFileError: no export at `model_dir`.
    """
    refuse_single_string(texts, "texts", "texts", "text")
    return _predict(model_dir, TEXT, texts, top_k=top_k, batch_size=batch_size, threshold=threshold)


def input_kind(model_dir: str) -> str:
    """`"text"` or `"image"`: what the export's `serving_default` signature takes.

    model_dir: str. A version folder, or a model's base folder (its latest version).
    """
    version_dir = _version_dir(model_dir)
    return _kind(_serving_default(version_dir), version_dir)


def read_text_lines(path: str) -> list[str]:
    """The non-empty lines of a UTF-8 text file, one text each (line ends stripped; blank lines skipped and
    counted in the log).

    path: str. A text file with one text per line, UTF-8 (a byte-order mark, as Notepad writes, is dropped).
    """
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise MissingFileError(f"Expected a text file with one text per line. Received: {path!r}")
    content = text_encoding.decode_utf8(path, _read(path))
    # newline=None: "\n", "\r\n" and "\r" all end a line, as open() reads text files.
    lines = [line.rstrip("\r\n") for line in io.StringIO(content, newline=None)]
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise ConfigError(f"Expected at least one non-empty line of text. Received: an empty file {path!r}")
    if len(texts) < len(lines):
        logging.info("Skipped %d blank lines of %s.", len(lines) - len(texts), path)
    return texts


def _version_dir(model_dir):
    """The version folder `model_dir` means, or a `MissingFileError` saying what a model folder holds."""
    expected = ("Pass an export's version folder (holding saved_model.pb) or its base folder (holding "
                "version folders 1/, 2/, ...), as export_saved_model writes them.")
    if not tf.io.gfile.isdir(model_dir):
        raise MissingFileError(f"No model folder at this path. {expected} Received: model_dir={model_dir!r}")
    try:
        return versioning.latest_version_dir(model_dir)
    except FileNotFoundError as error:
        raise MissingFileError(
            f"No SavedModel in this folder: no saved_model.pb and no version folders. {expected} "
            f"Received: model_dir={model_dir!r}"
        ) from error


def _serving_default(version_dir):
    try:
        import tensorflow_text  # noqa: F401  Registers the tokenizer ops text exports use, as TF Serving links them.
    except ImportError:
        logging.debug("tensorflow_text is not installed; only exports without its ops will load.")
    try:
        loaded = tf.saved_model.load(version_dir)
    except (OSError, ValueError) as error:  # e.g. a version folder without saved_model.pb, or one not a SavedModel
        raise MissingFileError(
            f"Expected a SavedModel (saved_model.pb) in the version folder; export the model again or "
            f"pick another version. Received: {version_dir!r} ({error})"
        ) from error
    if layout.SERVING_DEFAULT not in loaded.signatures:
        raise ConfigError(
            "Expected a tfxfer export, whose serving_default signature takes images or texts. "
            f"Received: a SavedModel with signatures {sorted(loaded.signatures)} at {version_dir!r}"
        )
    return loaded.signatures[layout.SERVING_DEFAULT]


def _kind(serve, version_dir):
    names = set(serve.structured_input_signature[1])
    for kind, input_name in ((TEXT, layout.TEXTS_INPUT), (IMAGE, layout.IMAGE_BYTES_INPUT)):
        if names == {input_name}:
            return kind
    raise ConfigError(
        f"Expected a tfxfer export whose serving_default takes {layout.TEXTS_INPUT!r} (text) or "
        f"{layout.IMAGE_BYTES_INPUT!r} "
        f"(images). Received: inputs {sorted(names)} in {version_dir!r}"
    )


def _predict(model_dir, kind, inputs, *, top_k, batch_size, threshold):
    if top_k < 1 or batch_size < 1:
        raise ConfigError(f"top_k and batch_size must be positive. Received: top_k={top_k}, batch_size={batch_size}")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be a probability in [0, 1]. Received: threshold={threshold!r}")
    inputs = list(inputs)
    if not inputs:
        raise ConfigError(f"Pass at least one {kind} to predict. Received: none")
    model = model_dir if isinstance(model_dir, ServingModel) else load_serving_model(model_dir)
    serve, names, tasks = model.signature, model.class_names, model.tasks
    if model.kind != kind:
        raise ConfigError(
            f"The model at {model.version_dir!r} takes {model.kind} inputs; pass {model.kind}s "
            f"(predict.py: {'--text/--text_file' if model.kind == TEXT else 'image files'}). Received: {kind} inputs"
        )
    named = None
    if kind == IMAGE:
        # After the kind check: image paths given to a text model are a mistake of kind, not of paths.
        inputs, named = map(list, zip(*_listed_images(inputs)))
    logging.info("Predicting %d %ss with %s", len(inputs), kind, model.version_dir)
    predictions, skipped = [], []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start:start + batch_size]
        if kind == TEXT:
            probabilities = _probabilities_of(serve(**{layout.TEXTS_INPUT: tf.constant(batch, tf.string)}), tasks)
        else:
            probabilities, batch = _decodable_images(model, batch, named[start:start + batch_size], skipped)
        for index, source in enumerate(batch):
            if tasks is None:
                predictions.append(Prediction(source, _best(probabilities[index], names, top_k)))
                continue
            answers = {task: _best(probabilities[task][index], served.class_names, top_k,
                                   threshold if served.multi_label else None)
                       for task, served in tasks.items()}
            predictions.append(Prediction(source, [], answers))
    _report_skipped(skipped, len(inputs))
    return Predictions(predictions, [path for path, _ in skipped])


def _decodable_images(model, paths, named, skipped):
    """`(probabilities, paths)` of the images of `paths` the model decodes; the others (and files that cannot be
    read) go to `skipped`, as `(path, the reason)`, unless `named` (bool per path) says the user named one: a
    ConfigError.

    The verdict is the export's own decoding (`serving_probabilities`, as evaluation and TF Serving
    decide), never a local decoder that may accept or refuse other files.
    """
    contents, refused = _read_listed(paths)
    readable = list(contents)
    probabilities, not_decoded = (serving_probabilities(model, list(contents.values())) if contents
                                  else (concatenate_probabilities([], model), {}))
    refused.update({readable[index]: reason for index, reason in not_decoded.items()})
    bad = [paths[index] for index in sorted(refused) if named[index]]
    if bad:
        reason = refused[paths.index(bad[0])]
        raise ConfigError("Expected JPEG/PNG/GIF/BMP images; these files cannot be decoded, leave them out. "
                          f"Received: {bad}. The model said about {bad[0]!r}: {reason}")
    skipped += [(paths[index], refused[index]) for index in sorted(refused)]
    return probabilities, [path for index, path in enumerate(paths) if index not in refused]


def _read_listed(paths):
    """`({index: contents}, {index: reason})` of `paths`: a listed file may not be readable (a broken link, no read
    permission, deleted since it was listed), and is then refused as an undecodable one is, with the reason."""
    contents, unreadable = {}, {}
    for index, path in enumerate(paths):
        try:
            contents[index] = _read(path)
        except tf.errors.OpError as error:
            unreadable[index] = f"cannot be read: {_op_message(error)}"
    return contents, unreadable


def _report_skipped(skipped, total):
    """Warns of the images of folders the model could not decode, naming a few; a ConfigError when it decoded none."""
    if not skipped:
        return
    examples = "; ".join(f"{path} ({reason})" for path, reason in skipped[:_PATHS_IN_WARNING])
    if len(skipped) == total:
        raise ConfigError(f"The model could decode none of the {total} image files of the folders given; expected "
                          f"JPEG/PNG/GIF/BMP/WebP images. Received: e.g. {examples}")
    logging.warning("Skipped %d of %d image files the model cannot decode (truncated, corrupt, or not an image "
                    "despite the extension; listed in the result's skipped_files), e.g. %s", len(skipped), total,
                    examples)


def _best(row, names, top_k, threshold=None):
    """(class name, probability) of the `top_k` most probable classes, best first; above `threshold` if set."""
    best = np.argsort(-row, kind="stable")[:top_k]
    return [(names[i], float(row[i])) for i in best if threshold is None or row[i] > threshold]


def _probabilities_of(outputs, tasks):
    """A signature's probabilities as numpy: `(N, C)`, or `{task: (N, C)}` for a multi-task export."""
    if tasks is None:
        return outputs[layout.PROBABILITIES].numpy()
    return {task: outputs[layout.task_output(layout.PROBABILITIES, task)].numpy() for task in tasks}


def serving_model_name(model_dir: str) -> str:
    """The name TF Serving knows the model by: its base folder's name.

    model_dir: str. A version folder (`.../flowers/3`) or a base folder (`.../flowers`).
    """
    folder = os.path.normpath(os.path.abspath(model_dir))
    name = os.path.basename(folder)
    return os.path.basename(os.path.dirname(folder)) if name.isdigit() else name


def _op_message(error):
    """A TensorFlow op error's message without its op and device names, at most 300 characters."""
    # "[[{{node ...}}]]": the node's name, whose removal leaves its brackets.
    message = re.sub(r"\[\[\{\{.*?\}\}\]\]|\{\{.*?\}\}|\[Op:\w+\]|\bname:\s*$", "", error.message)
    return " ".join(message.split())[:300]


def read_files(paths: Sequence[str]) -> list[bytes]:
    """The contents of files, e.g. encoded images for a TF Serving request, from any filesystem TensorFlow reads.

    paths: sequence of str. Local paths or URLs such as `gs://bucket/photo.jpg`.
    """
    return [_read(path) for path in paths]


def _read(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


@dataclasses.dataclass(frozen=True)
class ServingModel:
    """An export's `serving_default` signature, loaded once to be called batch after batch.

    Attributes:
        version_dir: str. The version folder it was loaded from.
        kind: str. `"image"` (it takes encoded image bytes) or `"text"` (raw strings).
        class_names: list[str] | None. Its class names, in the order of its probability
            columns; None for a multi-task export (see `tasks`).
        signature: The concrete function of `serving_default`.
        tasks: dict | None. `{task: ServedTask}` of a multi-task export; None for one head.
    """

    version_dir: str
    kind: str
    class_names: list[str] | None
    signature: object
    tasks: dict[str, ServedTask] | None = None


def load_serving_model(model_dir: str) -> ServingModel:
    """Loads the `serving_default` signature of an export, with its input kind and class names (or tasks).

    model_dir: str. A version folder, or a model's base folder (meaning its latest version).
    """
    version_dir = _version_dir(model_dir)
    signature = _serving_default(version_dir)  # first: a folder without saved_model.pb has no labels either
    tasks = served_tasks(version_dir)
    names = class_names(version_dir) if tasks is None else None
    return ServingModel(version_dir, _kind(signature, version_dir), names, signature, tasks)


def serving_probabilities(
    model: ServingModel, inputs: Sequence[bytes] | Sequence[str]
) -> tuple[np.ndarray | dict[str, np.ndarray], dict]:
    """Runs `serving_default` on one batch; inputs it refuses (images that do not decode) are left out.

    Args:
        model: ServingModel. From `load_serving_model`.
        inputs: sequence of bytes or str. Encoded images (file contents) for an image
            export, raw texts for a text export: what a TF Serving request carries.

    Returns:
        (probabilities, refused): float32 `(M, C)` probabilities of the accepted inputs, in
        order (`{task: (M, C)}` for a multi-task export), and `{index in inputs: the model's
        reason}` for the refused ones (M + len(refused) = N).
    """
    name = layout.TEXTS_INPUT if model.kind == TEXT else layout.IMAGE_BYTES_INPUT

    def serve(batch):
        return _probabilities_of(model.signature(**{name: tf.constant(batch, tf.string)}), model.tasks)

    inputs = list(inputs)
    try:
        return serve(inputs), {}
    except tf.errors.InvalidArgumentError:
        # The signature fails the whole batch. Each input goes through it again alone, so the verdict
        # is the export's own decoding (as TF Serving would decide), never a local decoder's.
        rows, refused = [], {}
        for index, value in enumerate(inputs):
            try:
                rows.append(serve([value]))
            except tf.errors.InvalidArgumentError as error:
                # What the decoder said, after graph mode's "Detected at node ... <stack traces unavailable>".
                refused[index] = _op_message(error).rpartition("<stack traces unavailable>")[2].strip()
        return concatenate_probabilities(rows, model), refused


def concatenate_probabilities(parts: list, model: ServingModel) -> np.ndarray | dict[str, np.ndarray]:
    """Batches of probabilities, `(n, C)` arrays (or `{task: (n, C)}`), as one; empty `(0, C)` for none."""
    if model.tasks is None:
        return np.concatenate(parts) if parts else np.zeros((0, len(model.class_names)), np.float32)
    return {task: np.concatenate([part[task] for part in parts]) if parts
            else np.zeros((0, len(served.class_names)), np.float32)
            for task, served in model.tasks.items()}
