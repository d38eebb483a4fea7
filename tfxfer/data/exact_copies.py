"""Exact copies among the examples: counted, reported, and kept on one side of a split.

Real data sets hold copies: the same photo saved twice, the same ticket sent
twice. Copies in training only weigh an example more, but two others are wrong
in silence: a validation example with a copy in training is scored as unseen,
so validation accuracy overstates what the model does on new data; and copies
with different labels teach the model both. The loaders key every example by
its content (a fingerprint of a file's bytes, or the text itself), count and
log what they find here (`Datasets.exact_copies`, in `summary()`), and split
groups of copies (`tfxfer.data.splits`), so the validation part a loader
carves out never holds a copy of a training example. Evaluating an export
(`tfxfer.evaluation.exported_model`) counts the copies among the evaluated
inputs the same way: each is scored again, and copies with different labels
cost a point whatever the model predicts; given the data the model was trained
on, it also counts the evaluated inputs that copy a training example.
Copies that differ by a byte (a photo saved again as JPEG, a text with one
more space) are not found.
"""

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.tasks import MISSING_LABEL

# How many groups of copies a message names.
_GROUPS_IN_MESSAGE = 3
# Names (texts, paths) are shown up to this many characters, and an ellipsis.
_SHOWN_CHARS = 80
# What copies do where they are found, by `report_copies`' purpose: (copies, copies with different labels,
# copies of training examples among the examples scored, what to do about those).
_CONSEQUENCES = {
    "training": ("A validation_split keeps each group on one side.",
                 "the model is taught both labels for the same input",
                 "validation scores them as unseen, so its accuracy overstates the model's on new {what}",
                 "Remove those copies from the validation data."),
    "evaluation": ("Each copy is scored again, so its example weighs more in the scores.",
                   "whatever the model predicts, the scores count it wrong on one of them",
                   "the scores count them as unseen, so they overstate the model's accuracy on new {what}",
                   "Evaluate on data without them."),
}


def fingerprint(contents: tf.Tensor) -> tf.Tensor:
    """A file's content key: a 64-bit fingerprint (FarmHash) of its bytes, equal for exact copies."""
    return tf.strings.to_hash_bucket_fast(contents, np.iinfo(np.int64).max)


def copy_groups(copies) -> tuple[np.ndarray, np.ndarray]:
    """`(group of each example, first example of each group)`: groups of equal keys, numbered in order of appearance."""
    _, first, inverse = np.unique(np.asarray(copies), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    renumbered = np.empty_like(order)
    renumbered[order] = np.arange(len(order))
    return renumbered[inverse.reshape(-1)], first[order]


def report_copies(keys, labels, names, *, what: str, source: str,
                  validation_keys=None, validation_names=None, purpose: str = "training") -> dict[str, int]:
    """Counts and logs the exact copies among `keys`; warns of copies with different labels or across a fixed split.

    Args:
        keys: array-like. Content key of each training example (for data a
            loader splits itself: of every example before the split).
        labels: array-like, or dict of them. Each example's class `(N,)` or
            classes (multi-hot or bool `(N, K)`); multi-task data gives
            `{task: labels}`, where a row of `MISSING_LABEL` has no label for
            the task and differs from no copy.
        names: sequence of str, or a function of an index. What a message calls
            each example (its path, the text itself, or e.g. "train[12]").
        what: str. What the examples are ("images", "texts").
        source: str. Where they came from, for the messages.
        validation_keys: array-like | None. Content keys of a fixed validation
            set (a `val/` folder or file), checked for copies of training examples.
        validation_names: sequence of str, or a function of an index. Its
            examples' names (with `validation_keys`).
        purpose: str. What the examples are for, `"training"` or `"evaluation"`: what
            the messages say copies do.

    Returns:
        `{"copies", "copy_groups", "groups_with_different_labels"}`: examples
        that copy an earlier one, groups of two or more copies, and those of them
        whose labels differ; with a fixed validation set also
        `"validation_copies_of_training"`.
    """
    copies_do, different_labels_do, _, _ = _CONSEQUENCES[purpose]
    keys = np.asarray(keys)
    name_of = names if callable(names) else names.__getitem__
    group, first = copy_groups(keys)
    sizes = np.bincount(group, minlength=len(first))
    copied = np.flatnonzero(sizes > 1)
    differs = _groups_with_different_labels(group, labels) if len(copied) else copied
    counts = {"copies": int(sizes[copied].sum() - len(copied)), "copy_groups": len(copied),
              "groups_with_different_labels": len(differs)}
    if len(copied):
        logging.info("%d %s in %s are exact copies of another (%d groups of copies), e.g. %s. %s",
                     counts["copies"], what, source, len(copied), _groups(copied, group, name_of), copies_do)
    if len(differs):
        logging.warning(
            "%d groups of exact copies among the %s in %s carry different labels, e.g. %s: %s. Correct the labels, "
            "or remove the copies with the wrong one.", len(differs), what, source, _groups(differs, group, name_of),
            different_labels_do)
    if validation_keys is not None:
        counts["validation_copies_of_training"] = report_copies_of_training(
            keys, names, validation_keys, validation_names, what=what, source=source, purpose=purpose)
    return counts


def report_copies_of_training(training_keys, training_names, keys, names, *, what: str, source: str,
                              purpose: str = "training") -> int:
    """Counts the examples scored (`keys`) that are exact copies of training examples; warns when there are any.

    Args:
        training_keys: array-like. Content key of each training example.
        training_names: sequence of str, or a function of an index. Their names, for the message.
        keys: array-like. Content keys of the examples scored: a fixed validation set, or evaluation data.
        names: sequence of str, or a function of an index. Their names.
        what: str. What the examples are ("images", "texts").
        source: str. Where the training examples came from, for the message.
        purpose: str. What the examples scored are for, `"training"` (validation) or `"evaluation"`.

    Returns:
        How many of the examples scored copy a training example.
    """
    _, _, consequence, remedy = _CONSEQUENCES[purpose]
    scored = "validation " if purpose == "training" else ""
    training_name_of = training_names if callable(training_names) else training_names.__getitem__
    name_of = names if callable(names) else names.__getitem__
    first_copy = {}
    for index, key in enumerate(np.asarray(training_keys).tolist()):
        first_copy.setdefault(key, index)
    leaked = [(i, first_copy[key]) for i, key in enumerate(np.asarray(keys).tolist()) if key in first_copy]
    if leaked:
        shown = "; ".join(f"{_shown(name_of(i))} = {_shown(training_name_of(j))}"
                          for i, j in leaked[:_GROUPS_IN_MESSAGE])
        logging.warning("%d of the %d %s%s are exact copies of training %s in %s, e.g. %s: %s. %s",
                        len(leaked), len(keys), scored, what, what, source, shown,
                        consequence.format(what=what), remedy)
    return len(leaked)


def _groups_with_different_labels(group: np.ndarray, labels) -> np.ndarray:
    """The groups whose members carry two different labels for one task (a missing label differs from none)."""
    differ = set()
    for values in (labels.values() if isinstance(labels, dict) else [labels]):
        rows = np.asarray(values).reshape(len(group), -1)
        labelled = ~np.all(rows == MISSING_LABEL, axis=1)
        pairs = np.unique(np.column_stack([group[labelled], rows[labelled]]), axis=0)
        groups, distinct = np.unique(pairs[:, 0], return_counts=True)
        differ.update(groups[distinct > 1].astype(int).tolist())
    return np.asarray(sorted(differ), int)


def _groups(groups, group: np.ndarray, name_of) -> str:
    """A few groups of copies, each as its first names joined by ' = '."""
    shown = []
    for g in groups[:_GROUPS_IN_MESSAGE]:
        members = np.flatnonzero(group == g)
        shown.append(" = ".join(_shown(name_of(i)) for i in members[:_GROUPS_IN_MESSAGE])
                     + (" = ..." if len(members) > _GROUPS_IN_MESSAGE else ""))
    return "; ".join(shown)


def _shown(name) -> str:
    """`name` quoted; a long one (a text, a deep path) keeps its start and its end."""
    name = str(name)
    if len(name) > _SHOWN_CHARS:
        name = name[:_SHOWN_CHARS // 3] + "..." + name[-(_SHOWN_CHARS - _SHOWN_CHARS // 3):]
    return repr(name)
