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
"""

import numpy as np

from tfxfer.errors import ConfigError


def split_per_class(
    labels, validation_split: float, seed: int, *, what: str = "examples"
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

    Returns:
        (train indices, validation indices), int64 arrays.

    Raises:
        ConfigError: the rule above holds out no example at all.
    """
    labels = np.asarray(labels).reshape(-1)
    classes, inverse = np.unique(labels, return_inverse=True)
    rng = np.random.default_rng(seed)
    # Permutations first, in class order, so a seed picks the same examples as
    # the per-class splits this function replaced whenever the counts agree.
    members = [rng.permutation(np.flatnonzero(inverse == c)) for c in range(len(classes))]
    sizes = np.array([len(m) for m in members], np.int64)
    quotas = _validation_counts(sizes, len(labels), validation_split, rng)
    if not quotas.sum():
        raise ConfigError(
            f"validation_split={validation_split} of {len(labels)} {what} in {len(classes)} classes rounds "
            f"to no validation {what}. Use a larger validation_split, add {what}, or pass "
            "validation_split=None."
        )
    validation = np.concatenate([m[:q] for m, q in zip(members, quotas)]).astype(np.int64)
    is_validation = np.zeros(len(labels), bool)
    is_validation[validation] = True
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
    class_membership: np.ndarray, validation_split: float, seed: int, *, what: str = "examples"
) -> tuple[np.ndarray, np.ndarray]:
    """Splits multi-task examples into (train, validation) indices, every task's classes kept in training.

    Examples are stratified by their rarest label over all tasks (the
    (task, class) pair fewest examples carry), as `split_per_class` does for
    one multi-label task: a rare class of any task is then spread over both
    splits, and the classes that co-occur with it still get about their share.
    A class can still end up only in validation (all its examples stratified
    under rarer labels); one of its validation examples, the first, then moves
    back to training, so every class that has examples can be learnt.

    Args:
        class_membership: bool `(N, K)`. Whether example `n` carries label `k`,
            over every task's classes side by side (False where the example has
            no label for the task); every example carries at least one.
        validation_split: float. Fraction strictly between 0 and 1.
        seed: int. Seed of the split.
        what: str. What the examples are ("images", "texts"), for the error.

    Returns:
        (train indices, validation indices), int64 arrays, each sorted.

    Raises:
        ConfigError: the split holds out no example at all.
    """
    membership = np.asarray(class_membership, bool)
    counts = membership.sum(axis=0)
    # Labels an example lacks get an infinite count; argmin breaks ties by column.
    keys = np.argmin(np.where(membership, counts, np.inf), axis=1)
    train, validation = split_per_class(keys, validation_split, seed, what=what)
    for column in range(membership.shape[1]):
        if membership[validation, column].any() and not membership[train, column].any():
            moved = validation[np.flatnonzero(membership[validation, column])[0]]
            train, validation = np.sort(np.append(train, moved)), validation[validation != moved]
    if not len(validation):
        raise ConfigError(
            f"validation_split={validation_split} of {len(keys)} {what} leaves no validation {what} once every "
            f"class of every task keeps a training example. Use a larger validation_split, add {what}, or "
            "pass validation_split=None.")
    return train, validation
