"""Altered copies of texts, for a teacher to label: a larger transfer set for distillation.

A student distilled on the labelled texts alone sees the teacher's
probabilities on those texts only, where they mostly repeat the labels. On
altered copies of them (words left out, short spans cut out) the teacher's
probabilities say what the labels cannot: how much each part of a text
counts. Tang et al. (2019, "Distilling task-specific knowledge from BERT into
simple neural networks") distil BERT into a BiLSTM on such copies: each word
masked with probability 0.1, and with probability 0.25 an n-gram (n from 1 to
5) sampled from the text in place of the whole. Here a masked word is left
out rather than replaced by a mask token, which the teacher's and the
student's tokenizers would read differently.
"""

import numpy as np

DROP_PROBABILITY = 0.1
NGRAM_PROBABILITY = 0.25
MAX_NGRAM = 5


def augment_texts(texts: list[str], copies: int, *, seed: int = 0, drop_probability: float = DROP_PROBABILITY,
                  ngram_probability: float = NGRAM_PROBABILITY, max_ngram: int = MAX_NGRAM) -> list[str]:
    """Up to `copies` altered copies of each text, without the texts themselves or repeats.

    Each copy of a text, split on whitespace, leaves out each word with
    `drop_probability` (keeping one at least), and then, with
    `ngram_probability`, keeps only a random span of 1 to `max_ngram` of its
    words. A copy that equals its text or another copy is left out, so short
    texts give fewer.

    Args:
        texts: list of str. The texts to copy, e.g. the training texts.
        copies: int. >= 0; copies tried per text.
        seed: int. The same seed gives the same copies.
        drop_probability: float. In [0, 1); the chance that a word is left out.
        ngram_probability: float. In [0, 1]; the chance that a copy is cut to a span.
        max_ngram: int. >= 1; the longest span, in words.

    Returns:
        The copies, a list of str, text by text.

    Raises:
        ValueError: a count or probability out of range.

    Example:

    >>> tfxfer.augment_texts(["a gripping and moving film"], 2, seed=0)
    ['a gripping film', 'moving film']
    """
    if copies < 0 or max_ngram < 1 or not 0 <= drop_probability < 1 or not 0 <= ngram_probability <= 1:
        raise ValueError(
            "augment_texts takes copies >= 0, max_ngram >= 1, drop_probability in [0, 1) and ngram_probability "
            f"in [0, 1]. Received: copies={copies}, max_ngram={max_ngram}, drop_probability={drop_probability}, "
            f"ngram_probability={ngram_probability}")
    rng = np.random.default_rng(seed)
    augmented, seen = [], set(texts)
    for text in texts:
        words = text.split()
        if not words:
            continue
        for _ in range(copies):
            copy = " ".join(_altered(words, rng, drop_probability, ngram_probability, max_ngram))
            if copy not in seen:
                seen.add(copy)
                augmented.append(copy)
    return augmented


def _altered(words: list[str], rng: np.random.Generator, drop_probability: float, ngram_probability: float,
             max_ngram: int) -> list[str]:
    kept = [word for word, drop in zip(words, rng.random(len(words)) < drop_probability) if not drop]
    kept = kept or [words[rng.integers(len(words))]]
    if rng.random() < ngram_probability:
        length = min(int(rng.integers(1, max_ngram + 1)), len(kept))
        start = int(rng.integers(len(kept) - length + 1))
        kept = kept[start:start + length]
    return kept
