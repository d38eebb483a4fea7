"""The one train/validation split of every loader: seeded, stratified per class.

Image folders, text files and both TFDS loaders hold out validation data with
`split_per_class`, so the same labels, `validation_split` and seed give the
same split whatever the source, and every class is represented in proportion.

The rounding rule:
- The validation set has `floor(N * validation_split + 0.5)` examples in all
  (round half up: 3.5 gives 4), so its size is what the fraction promises
  overall, not the sum of per-class roundings.
- Each class gives the whole part of its own share (`n_c * validation_split`);
  the examples still missing go one each to the classes with the largest
  fractional parts, ties drawn from the seed.
- A class never gives its last example: every class keeps at least one
  training example (the examples it cannot give go to other classes).
- Which examples of a class are held out is a seeded permutation.
- A split that holds out nothing is an error, not a run without validation.

Multi-task data (`split_for_tasks`) is split per class of each example's
rarest (task, class) label, then any class of any task left without a
training example gets one back from validation.

Exact copies stay on one side. Given each example's content key (`copies`: a
fingerprint of its file, or the text), the split draws groups of copies, not
examples: each group counts as its first example's class and fills that
class's quota with its size; a group larger than what is left of the quota is
passed over (if none fits, a class with more than one group holds out its first
whole). So validation never scores a copy of a training example, and without
copies (every group one example) the split is the same as without keys.
"""

import numpy as np
from absl import logging

from tfxfer.data import exact_copies
from tfxfer.errors import ConfigError


def split_per_class(
    labels, validation_split: float, seed: int, *, what: str = "examples", copies=None
) -> tuple[np.ndarray, np.ndarray]:
    """Splits example indices into (train, validation), stratified per class.

    Deterministic for given `labels`, `validation_split` and `seed`; every index
    is in exactly one of the two, each sorted (so the examples keep their order).

    Args:
        labels: array-like of int. The class of each example (for multi-label
            data, one class per example to stratify by, e.g. its rarest).
        validation_split: float. Fraction strictly between 0 and 1 (checked by
            `tfxfer.data.loader_args.check_loader_args`).
        seed: int. Seed of the per-class permutations and of the ties.
        what: str. What the examples are ("images", "texts"), for the error.
        copies: array-like | None. Each example's content key; examples with
            equal keys (exact copies) go to the same side. None: no copies.

    Returns:
        (train indices, validation indices), int64 arrays.

    Raises:
        ConfigError: the rule above holds out no example at all, or nothing
            is left to hold out once copies are kept together (e.g. each class
            is copies of one example).
    """
    is_validation, group, classes = _held_out(labels, validation_split, seed, what, copies)
    # A group counts as its first example's class: a class all of whose examples sit in
    # held-out groups of other classes (copies labelled otherwise) gets one back.
    return _checked(_keep_classes_in_training(is_validation, group, classes), validation_split, what)


def _held_out(labels, validation_split: float, seed: int, what: str, copies
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stratified draw of groups of copies: `(held out per example, group per example, class index per example)`."""
    labels = np.asarray(labels).reshape(-1)
    classes, inverse = np.unique(labels, return_inverse=True)
    group, first = exact_copies.copy_groups(np.arange(len(labels)) if copies is None else copies)
    group_sizes = np.bincount(group, minlength=len(first))
    group_classes = inverse[first]
    rng = np.random.default_rng(seed)
    # Permutations first, in class order, so a seed picks the same examples as
    # the per-class splits this function replaced whenever the counts agree.
    members = [rng.permutation(np.flatnonzero(group_classes == c)) for c in range(len(classes))]
    sizes = np.array([group_sizes[m].sum() for m in members], np.int64)
    quotas = _validation_counts(sizes, len(labels), validation_split, rng)
    if not quotas.sum():
        raise ConfigError(
            f"validation_split={validation_split} of {len(labels)} {what} in {len(classes)} classes rounds "
            f"to no validation {what}. Use a larger validation_split, add {what}, or pass "
            "validation_split=None."
        )
    held_out = np.zeros(len(first), bool)
    for groups, quota in zip(members, quotas):
        held_out[_fill(groups, group_sizes, quota)] = True
    return held_out[group], group, inverse.reshape(-1)


def _fill(groups: np.ndarray, group_sizes: np.ndarray, quota: int) -> list[int]:
    """The groups, in their (seeded) order, that fill `quota` examples, passing over any that would exceed it.

    When every group is larger than a non-zero quota, the first group of all
    (the class has others) is held out anyway: a class of copies still gets a
    validation example, at the price of a larger share.
    """
    chosen, total = [], 0
    for g in groups:
        if total == quota:
            break
        if total + group_sizes[g] <= quota:
            chosen.append(g)
            total += group_sizes[g]
    if quota and not chosen and len(groups) > 1:
        chosen.append(groups[0])
    return chosen


def _keep_classes_in_training(is_validation: np.ndarray, group: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Moves back to training the group of the first example of each class that has none left there.

    `labels` is each example's class `(N,)`, or a bool `(N, K)` of the classes
    each example carries (multi-task data).
    """
    is_validation = is_validation.copy()
    labels = np.asarray(labels)
    if labels.ndim == 1:  # Only the classes without a training example are looked at: no (N, K) array.
        columns = (labels == c for c in np.setdiff1d(labels, labels[~is_validation]))
    else:
        columns = labels.astype(bool).T
    for column in columns:  # Lazily: a group moved back may give a later class its training example.
        if column.any() and not (column & ~is_validation).any():
            is_validation[group == group[np.argmax(column)]] = False
    return is_validation


def _checked(is_validation: np.ndarray, validation_split: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    """`(train, validation)` indices, or a ConfigError when no example is left in validation."""
    if not is_validation.any():
        raise ConfigError(
            f"validation_split={validation_split} of {len(is_validation)} {what} leaves no validation {what} once "
            f"every class keeps a training example and exact copies stay together (the log lists copies). Use a "
            f"larger validation_split, add {what}, remove copies, or pass validation_split=None.")
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)


def _validation_counts(
    sizes: np.ndarray, total: int, validation_split: float, rng: np.random.Generator
) -> np.ndarray:
    """How many examples each class holds out, by the rounding rule of this module."""
    target = int(np.floor(total * validation_split + 0.5))
    shares = sizes * validation_split
    whole = np.floor(shares)
    quotas = np.minimum(whole.astype(np.int64), sizes - 1)
    # Largest fractional part first; equal parts in an order drawn from the seed.
    order = np.lexsort((rng.random(len(sizes)), -(shares - whole)))
    missing = target - int(quotas.sum())
    while missing > 0:
        room = order[quotas[order] < sizes[order] - 1]
        if not room.size:
            break
        quotas[room[:missing]] += 1
        missing -= min(missing, room.size)
    return quotas


def split_for_tasks(
    class_membership: np.ndarray, validation_split: float, seed: int, *, what: str = "examples", copies=None
) -> tuple[np.ndarray, np.ndarray]:
    """Splits multi-task examples into (train, validation) indices, every task's classes kept in training.

    Examples are stratified by their rarest label over all tasks (the
    (task, class) pair fewest examples carry), as `split_per_class` does for
    one multi-label task: a rare class of any task is then spread over both
    splits, and the classes that co-occur with it still get about their share.
    A class can still end up only in validation (all its examples stratified
    under rarer labels); one of its validation examples, the first, then moves
    back to training (with its copies), so every class that has examples can be learnt.

    Args:
        class_membership: bool `(N, K)`. Whether example `n` carries label `k`,
            over every task's classes side by side (False where the example has
            no label for the task); every example carries at least one.
        validation_split: float. Fraction strictly between 0 and 1.
        seed: int. Seed of the split.
        what: str. What the examples are ("images", "texts"), for the error.
        copies: array-like | None. Each example's content key, as in `split_per_class`.

    Returns:
        (train indices, validation indices), int64 arrays, each sorted.

    Raises:
        ConfigError: the split holds out no example at all.
    """
    membership = np.asarray(class_membership, bool)
    counts = membership.sum(axis=0)
    # Labels an example lacks get an infinite count; argmin breaks ties by column.
    keys = np.argmin(np.where(membership, counts, np.inf), axis=1)
    is_validation, group, _ = _held_out(keys, validation_split, seed, what, copies)
    return _checked(_keep_classes_in_training(is_validation, group, membership), validation_split, what)


def warn_no_validation(source: str, *, missing: str = "no validation part", example_split: float = 0.2,
                       note: str = "") -> None:
    """Warns that `source` was loaded without validation data: early stopping and the reports then have
    nothing to read. Every loader words it this way, with what `source` lacks (`missing`), the
    `validation_split` to suggest, and a `note` of its own."""
    logging.warning("No validation data: %r has %s, and none of it is held out. Pass validation_split=%s (for "
                    "example; recipes: --validation_split=%s) to hold out part of each class.%s", source, missing,
                    example_split, example_split, note)
