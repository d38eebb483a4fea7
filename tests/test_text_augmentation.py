"""`tfxfer.augment_texts`: altered copies of texts for a teacher to label."""

import pytest

import tfxfer

TEXTS = ["a gripping and moving film about two brothers", "dull , overlong and badly acted", "fine"]


def test_copies_are_new_texts_made_of_the_words_in_order():
    copies = tfxfer.augment_texts(TEXTS, 5, seed=3)
    assert copies and len(copies) == len(set(copies)) and not set(copies) & set(TEXTS)
    for copy in copies:
        source = next(text.split() for text in TEXTS if _is_subsequence(copy.split(), text.split()))
        assert 1 <= len(copy.split()) < len(source)


def _is_subsequence(words, of):
    remaining = iter(of)
    return all(word in remaining for word in words)


def test_a_seed_gives_the_same_copies_and_another_seed_others():
    assert tfxfer.augment_texts(TEXTS, 4, seed=1) == tfxfer.augment_texts(TEXTS, 4, seed=1)
    assert tfxfer.augment_texts(TEXTS, 4, seed=1) != tfxfer.augment_texts(TEXTS, 4, seed=2)


def test_one_word_texts_and_blank_texts_give_no_copies():
    # A one-word text can only be copied as itself, which is left out.
    assert tfxfer.augment_texts(["fine", "  ", ""], 10) == []
    assert tfxfer.augment_texts(TEXTS, 0) == []


def test_without_spans_a_copy_leaves_out_about_the_drop_probability_of_the_words():
    words = [f"w{i}" for i in range(2000)]
    (copy,) = tfxfer.augment_texts([" ".join(words)], 1, seed=0, drop_probability=0.1, ngram_probability=0.0)
    assert 0.08 < 1 - len(copy.split()) / len(words) < 0.12


def test_with_spans_every_copy_is_a_span_of_at_most_max_ngram_words():
    copies = tfxfer.augment_texts([" ".join(f"w{i}" for i in range(50))], 20, seed=0, drop_probability=0.0,
                                  ngram_probability=1.0, max_ngram=3)
    assert copies and all(1 <= len(copy.split()) <= 3 for copy in copies)
    # Contiguous: consecutive word numbers.
    assert all([int(w[1:]) for w in copy.split()] == list(range(int(copy.split()[0][1:]),
                                                               int(copy.split()[0][1:]) + len(copy.split())))
               for copy in copies)


@pytest.mark.parametrize("arguments", [dict(copies=-1), dict(copies=1, max_ngram=0),
                                       dict(copies=1, drop_probability=1.0), dict(copies=1, ngram_probability=1.5)])
def test_out_of_range_arguments_are_refused_with_every_limit_named(arguments):
    with pytest.raises(ValueError, match=r"copies >= 0, max_ngram >= 1, drop_probability in \[0, 1\)"):
        tfxfer.augment_texts(TEXTS, **arguments)
