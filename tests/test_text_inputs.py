"""Bad text input: every skipped or changed text is counted, or the load stops with a clear error."""

import csv
import logging
import os
import re

import pytest
from _text_helpers import (
    NEGATIVE,
    POSITIVE,
    save_tiny_bert_preset,
    texts_and_labels,
    write_line_files,
    write_word_vectors,
)

import tfxfer
from tfxfer import errors
from tfxfer.data import text_files


def _line_files(folder, pos: bytes, neg: bytes, stem="reviews"):
    os.makedirs(folder, exist_ok=True)
    (folder / f"{stem}.pos").write_bytes(pos)
    (folder / f"{stem}.neg").write_bytes(neg)
    return str(folder)


def _csv(path, content: bytes):
    path.write_bytes(content)
    return str(path)


def _by_class(data, split="train"):
    """`{class name: sorted texts}` of a split."""
    texts, labels = texts_and_labels(getattr(data, split))
    result = {}
    for text, label in zip(texts, labels):
        result.setdefault(data.class_names[label], []).append(text)
    return {name: sorted(values) for name, values in result.items()}


# Not UTF-8: skipped and counted, one line or row at a time.

def test_a_bad_line_in_a_line_file_loses_only_that_line(tmp_path, caplog):
    folder = _line_files(tmp_path / "rt", b"good one\nfine \xe9t\xe9\nlovely\n", b"bad\npoor\n")
    with caplog.at_level(logging.WARNING, logger="absl"):
        data = tfxfer.load_text_data(folder)
    assert _by_class(data) == {"pos": ["good one", "lovely"], "neg": ["bad", "poor"]}
    assert data.skipped == {"undecodable": 1, "empty": 0}
    assert "undecodable 1 (not UTF-8: re-save the file as UTF-8, e.g. `iconv" in caplog.text
    assert "first at reviews.pos line 2" in caplog.text


def test_skips_in_train_and_val_folders_add_up(tmp_path):
    for split, texts in (("train", [b"a good film", b"\xff\xfe bad", b"   "]), ("val", [b"\xe9t\xe9", b"fine", b""])):
        for label in ("neg", "pos"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for index, text in enumerate(texts):
                (folder / f"{index}.txt").write_bytes(text)
    data = tfxfer.load_text_data(str(tmp_path), validation_split=None)
    assert data.skipped["undecodable"] == 4  # one per class folder of each split
    assert data.skipped["empty"] == 4
    assert (data.train_size, data.validation_size) == (2, 2)


def test_a_csv_row_with_bad_bytes_loses_only_that_row(tmp_path):
    path = _csv(tmp_path / "r.csv", b"id,text,label\n1,good,pos\n2,caf\xe9 bad,neg\n3,awful,neg\n"
                                    b"4,\"quoted, \xff\",pos\n5,fine,p\xe9s\n6,liked,pos\n\xff7,hated,neg\n")
    data = tfxfer.load_text_data(path)
    # Bad bytes in an unused column (row 7's id) cost nothing; in the text or label, the row only.
    assert _by_class(data) == {"pos": ["good", "liked"], "neg": ["awful", "hated"]}
    assert data.skipped == {"undecodable": 3, "empty": 0}


def test_a_utf16_file_is_an_error_not_every_line_lost(tmp_path):
    folder = _line_files(tmp_path / "rt", "good\nfine\n".encode("utf-16"), b"bad\n")
    with pytest.raises(ValueError, match=r"reviews.pos is UTF-16 .*Re-save it as UTF-8.*Received: first bytes"):
        tfxfer.load_text_data(folder)
    path = _csv(tmp_path / "r.csv", "text,label\ngood,pos\nbad,neg\n".encode("utf-16"))
    with pytest.raises(ValueError, match=r"r.csv is UTF-16"):
        tfxfer.load_text_data(path)


def test_a_utf8_byte_order_mark_is_dropped_from_files_and_lines(tmp_path):
    bom = b"\xef\xbb\xbf"
    folder = _line_files(tmp_path / "rt", bom + b"good\n" + bom + b"fine\n", b"bad\n")
    assert _by_class(tfxfer.load_text_data(folder)) == {"pos": ["fine", "good"], "neg": ["bad"]}
    for name, text in (("ham", b"hello"), ("spam", b"buy now")):
        (tmp_path / "mail" / name).mkdir(parents=True)
        (tmp_path / "mail" / name / "1.txt").write_bytes(bom + text)
    assert _by_class(tfxfer.load_text_data(str(tmp_path / "mail"))) == {"ham": ["hello"], "spam": ["buy now"]}


# Empty texts: skipped and counted.

def test_empty_and_whitespace_only_texts_are_counted_in_every_format(tmp_path):
    folder = _line_files(tmp_path / "rt", b"good\n\n \t \r\nfine\r\n", b"bad\n\n")
    data = tfxfer.load_text_data(folder)
    assert data.skipped == {"undecodable": 0, "empty": 3}
    assert _by_class(data) == {"pos": ["fine", "good"], "neg": ["bad"]}
    path = _csv(tmp_path / "r.csv", b"text,label\ngood,pos\n   ,pos\n\"\",neg\n\nbad,neg\n")
    data = tfxfer.load_text_data(path)
    assert data.skipped == {"undecodable": 0, "empty": 3}  # Two empty texts and the blank line.
    assert _by_class(data) == {"pos": ["good"], "neg": ["bad"]}


# Long texts: cut and counted.

def test_texts_over_max_text_chars_are_cut_and_counted(tmp_path, caplog):
    folder = _line_files(tmp_path / "rt", b"short\n" + b"x" * 25 + b"\n", b"0123456789 abcdef\nbad\n")
    with caplog.at_level(logging.WARNING, logger="absl"):
        data = tfxfer.load_text_data(folder, max_text_chars=10)
    assert _by_class(data) == {"pos": ["short", "x" * 10], "neg": ["0123456789", "bad"]}
    assert data.changed == {"truncated_chars": 2}
    assert data.summary()["changed"] == {"truncated_chars": 2}
    assert "truncated_chars 2 (longer than max_text_chars, cut to it; first at reviews.neg line 1)" in caplog.text


def test_a_50_mb_line_is_cut_to_the_default_limit(tmp_path):
    huge = b"word " * (10 * 2**20)  # 50 MB on one line.
    folder = _line_files(tmp_path / "rt", b"good\n" + huge + b"\n", b"bad\n")
    data = tfxfer.load_text_data(folder)
    texts, _ = texts_and_labels(data.train)
    assert sorted(len(text) for text in texts) == [3, 4, text_files.MAX_TEXT_CHARS - 1]  # The cut space stripped.
    assert data.changed == {"truncated_chars": 1}


def test_a_csv_field_over_the_csv_modules_limit_is_read_and_cut(tmp_path):
    limit = csv.field_size_limit()
    path = _csv(tmp_path / "r.csv", b'text,label\n"' + b"a" * 200_000 + b'",pos\nbad,neg\n')
    data = tfxfer.load_text_data(path, max_text_chars=1000)
    assert _by_class(data) == {"pos": ["a" * 1000], "neg": ["bad"]}
    assert data.changed == {"truncated_chars": 1}
    assert csv.field_size_limit() == limit  # The process-wide limit is restored.


def test_max_text_chars_must_be_a_positive_integer(tmp_path):
    folder = _line_files(tmp_path / "rt", b"good\n", b"bad\n")
    with pytest.raises(ValueError, match=r"max_text_chars must be a positive integer.*Received: max_text_chars=0"):
        tfxfer.load_text_data(folder, max_text_chars=0)


@pytest.fixture(scope="module")
def bert_preprocessor(tmp_path_factory):
    preset = save_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert"))
    return tfxfer.models.backbones.hub_text.load_hub_backbone(preset, sequence_length=8).preprocessor  # 6 words + [CLS] + [SEP].


def test_map_inputs_counts_texts_longer_than_the_sequence_length(tmp_path, bert_preprocessor, caplog):
    six, seven = " ".join(["good"] * 6), " ".join(["bad"] * 7)
    folder = _line_files(tmp_path / "rt", f"{six}\ngood film\n{seven} good\n".encode(),
                         f"bad\n{seven}\nthe plot was bad\n".encode())
    data = tfxfer.load_text_data(folder, validation_split=0.4, seed=0)
    with caplog.at_level(logging.WARNING, logger="absl"):
        tokens = data.map_inputs(bert_preprocessor)
    # Six words fit exactly; the two texts of 7 and 8 words are cut, whichever split holds them.
    assert tokens.changed == data.changed == {"truncated_chars": 0, "truncated_tokens": 2}
    assert data.summary()["changed"]["truncated_tokens"] == 2
    assert "2 of 6 texts (33.3%) have more than 6 tokens" in caplog.text and "--sequence_length" in caplog.text
    assert next(iter(tokens.train))[0]["token_ids"].shape[1] <= 8


def test_map_inputs_counts_words_a_word_vector_vectorizer_cuts(tmp_path):
    folder = _line_files(tmp_path / "rt", b"good film\nvery, very good -- film\n", b"bad\nbad bad bad\n")
    data = tfxfer.load_text_data(folder)
    vectorizer = tfxfer.models.backbones.word_vectors.build_vocabulary(["good film bad"], sequence_length=3)
    data.map_inputs(vectorizer)
    assert data.changed["truncated_tokens"] == 1  # Punctuation is stripped: 4 words, then 3, 2 and 1.
    padded = tfxfer.models.backbones.word_vectors.build_vocabulary(["good film bad"])  # No sequence_length: pads, never cuts.
    assert data.map_inputs(padded).changed["truncated_tokens"] == 0


def test_map_inputs_leaves_the_count_out_for_a_preprocessor_it_cannot_read(tmp_path):
    data = tfxfer.load_text_data(_line_files(tmp_path / "rt", b"good\n", b"bad\n"))
    data.map_inputs(lambda texts: texts)
    assert data.changed == {"truncated_chars": 0}


# Labels outside the label set.

def test_an_empty_csv_label_cell_is_skipped_as_no_label(tmp_path, caplog):
    path = _csv(tmp_path / "r.csv", b"text,label\ngood,pos\nunsure,\nmeh,  \nbad,neg\n")
    with caplog.at_level(logging.WARNING, logger="absl"):
        data = tfxfer.load_text_data(path)
    assert data.skipped == {"undecodable": 0, "empty": 0, "no_label": 2}
    assert _by_class(data) == {"pos": ["good"], "neg": ["bad"]}
    assert "no_label 2 (no class name; first at line 3)" in caplog.text


def test_empty_class_names_in_a_multi_label_cell_are_dropped_and_counted(tmp_path):
    path = _csv(tmp_path / "t.csv", b"text,tags\ncharged twice,billing||urgent\nsite down,urgent|\n"
                                    b"invoice,billing\nnothing,||\n")
    data = tfxfer.load_text_data(path, label_column="tags", label_separator="|")
    assert data.class_names == ["billing", "urgent"]
    assert dict(zip(*texts_and_labels(data.train))) == {
        "charged twice": [1.0, 1.0], "site down": [0.0, 1.0], "invoice": [1.0, 0.0]}
    assert data.skipped == {"undecodable": 0, "empty": 0, "no_label": 1}
    assert data.changed == {"truncated_chars": 0, "empty_class_names": 2}


def test_a_validation_class_without_training_texts_names_its_folder(tmp_path):
    for split, names in (("train", ["a", "b"]), ("val", ["a", "b", "c"])):
        for name in names:
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "1.txt").write_text(f"text of {name}")
    with pytest.raises(ValueError, match=r"Received: \['c'\] only in validation \(\['.*val/c'\]\)\. "
                                         r"Add training texts of these classes, or remove them"):
        tfxfer.load_text_data(str(tmp_path))


def test_a_class_whose_texts_were_all_skipped_is_an_error_naming_it(tmp_path):
    folder = _line_files(tmp_path / "rt", b"good\n", b"bad\n")
    (tmp_path / "rt" / "reviews.meh").write_bytes(b"\xe9\xe9\n\n")
    with pytest.raises(ValueError, match=r"at least one usable text.*Received: no usable text in "
                                         r"\['.*reviews.meh'\] \(skipped: \{'undecodable': 1, 'empty': 1\}\)"):
        tfxfer.load_text_data(folder)
    for name in ("ham", "spam", "eggs"):
        (tmp_path / "mail" / name).mkdir(parents=True)
    (tmp_path / "mail" / "ham" / "1.txt").write_text("hello")
    (tmp_path / "mail" / "spam" / "1.txt").write_text("buy")
    with pytest.raises(ValueError, match=r"no usable text in \['.*mail/eggs'\]"):
        tfxfer.load_text_data(str(tmp_path / "mail"))


def test_of_two_classes_the_one_without_a_usable_text_is_named(tmp_path):
    # With two classes, losing one leaves one class: the message said so, but not which folder or file was empty.
    folder = _line_files(tmp_path / "rt", b"\xe9\xe9\n \n", b"bad\n")
    empty = [os.path.join(folder, "reviews.pos")]
    with pytest.raises(errors.ConfigError, match=re.escape(
            "Every class folder or file needs at least one usable text. Add texts to it, fix its encoding (UTF-8) or "
            f"remove it. Received: no usable text in {empty}")):
        tfxfer.load_text_data(folder)


@pytest.mark.parametrize("val_c", [None, b" \n", b"caf\xe9"], ids=["no_folder", "empty_file", "latin1_file"])
def test_a_training_class_without_a_validation_text_is_refused_as_for_images(tmp_path, val_c):
    # val/ lacking a class, or holding none of its texts usable, used to validate silently without it.
    for split, names in (("train", "abc"), ("val", "ab")):
        for name in names:
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "1.txt").write_text(f"text of {name}")
    if val_c is not None:
        (tmp_path / "val" / "c").mkdir()
        (tmp_path / "val" / "c" / "1.txt").write_bytes(val_c)
    where = "no folder c/" if val_c is None else str(tmp_path / "val" / "c")
    with pytest.raises(errors.ConfigError, match=re.escape(
            f"Training and validation folders must hold the same classes, each with at least one usable text. Add "
            f"texts of ['c'] to {str(tmp_path / 'val')!r} (in a folder named as the class; UTF-8, not empty), or "
            f"remove these classes from the training folder too. Received: no validation text of ['c'] in "
            f"{str(tmp_path)!r} ([{where!r}]")):
        tfxfer.load_text_data(str(tmp_path))


# CSV structure.

def test_quoted_newlines_crlf_and_a_byte_order_mark_parse_as_one_row_each(tmp_path):
    path = _csv(tmp_path / "r.csv", b'\xef\xbb\xbftext,label\r\n"first line\r\nsecond, line",pos\r\n'
                                    b'"she said ""no""",neg\r\n"a\nb",neg\r\n')
    data = tfxfer.load_text_data(path)
    assert data.skipped == {"undecodable": 0, "empty": 0}
    assert _by_class(data) == {"pos": ["first line\r\nsecond, line"], "neg": ["a\nb", 'she said "no"']}


def test_rows_that_do_not_fit_the_header_are_skipped_as_malformed(tmp_path, caplog):
    path = _csv(tmp_path / "r.csv", b"text,label\ngood,pos\na great, moving film,pos\nno label field\n"
                                    b"trailing empty field,neg,\nbad,neg\n")
    with caplog.at_level(logging.WARNING, logger="absl"):
        data = tfxfer.load_text_data(path)
    assert data.skipped == {"undecodable": 0, "empty": 0, "malformed": 2}
    assert _by_class(data) == {"pos": ["good"], "neg": ["bad", "trailing empty field"]}
    expected = ("malformed 2 (more or fewer fields than the header: quote fields holding the delimiter "
                "or a line break; first at line 3)")
    assert expected in caplog.text


@pytest.mark.parametrize("name, delimiter", [("r.tsv", b"\t"), ("r.csv", b",")])
def test_a_text_opening_a_quote_it_never_closes_loses_no_row_to_it(tmp_path, caplog, name, delimiter):
    # Unquoted writers (echo, paste, hand-made TSVs) leave a text's leading '"' as it is: read as the start of a
    # quoted field, it ran to the next quote in the file, merging the rows between into one text with the last
    # row's label (nothing counted), or up to the end of the file into one malformed row.
    rows = [b'"Best day ever', b"pos", b"worst day", b"neg", b'he said "meh"', b"neg", b"fine", b"pos",
            b'"no closing quote either', b"neg", b"great", b"pos"]
    lines = [rows[i] + delimiter + rows[i + 1] for i in range(0, len(rows), 2)]
    path = _csv(tmp_path / name, b"text" + delimiter + b"label\n" + b"\n".join(lines) + b"\n")
    with caplog.at_level(logging.WARNING, logger="absl"):
        data = tfxfer.load_text_data(path)
    assert data.skipped == {"undecodable": 0, "empty": 0}
    assert _by_class(data) == {"pos": ['"Best day ever', "fine", "great"],
                               "neg": ['"no closing quote either', 'he said "meh"', "worst day"]}
    assert f"Read line by line in {path}: 2 quoted fields ran over line breaks without a proper closing quote " \
           "(first at line 2)" in caplog.text


def test_a_missing_text_column_names_the_columns_there_are(tmp_path):
    path = _csv(tmp_path / "file.csv", b"text,label\ngood,pos\nbad,neg\n")
    # A ConfigError: the recipes print its message alone, as the user's mistake, not a traceback.
    with pytest.raises(errors.ConfigError, match=r"file.csv has no column 'review'; its columns are \['text', 'label'\]\. "
                                         r"Pass the name of its text column as text_column= \(--text_column\)\. "
                                         r"Received: text_column='review'"):
        tfxfer.load_text_data(path, text_column="review")


def test_a_missing_label_column_names_the_columns_there_are(tmp_path):
    path = _csv(tmp_path / "file.csv", b"text,Stars\ngood,5\nbad,1\n")
    with pytest.raises(ValueError, match=r"no column 'stars'; its columns are \['text', 'Stars'\]\. "
                                         r"Pass the name of its label column as label_column= \(--label_column\); "
                                         r"did you mean 'Stars'\?\. Received: label_column='stars'"):
        tfxfer.load_text_data(path, label_column="stars")


def test_a_tab_separated_file_named_csv_says_so(tmp_path):
    path = _csv(tmp_path / "file.csv", b"text\tlabel\ngood\tpos\nbad\tneg\n")
    with pytest.raises(ValueError, match=r"columns are \['text\\tlabel'\].*looks separated by '\\t', not ','"):
        tfxfer.load_text_data(path)


# Texts tokenized by another model's preprocessor: refused before training, not an index error in the embedding.

_ANOTHER_MODELS_TOKENS = r"inputs made for another model, such as another model's tokenizer gives; tokenize the " \
                         r"texts with this model's own preprocessor: data\.map_inputs\(model\.preprocessor\)\. "
_QUICK = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=0)


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    return tfxfer.load_text_data(write_line_files(tmp_path_factory.mktemp("rt") / "rt", count=8), validation_split=0.25)


def _word_vector_classifier(tmp_path, data, **options):
    vectors = tmp_path / "vectors.txt"
    write_word_vectors(vectors, POSITIVE + NEGATIVE + ["film"], dim=4)
    backbone = tfxfer.load_word_vector_backbone(vectors, data.texts(), sequence_length=6, encoder="mean", **options)
    return tfxfer.build_text_classifier(backbone, len(data.class_names))


def test_bert_tokens_for_a_word_vector_model_are_refused_naming_map_inputs(tmp_path, reviews):
    model = _word_vector_classifier(tmp_path, reviews)
    bert = tfxfer.build_text_classifier(save_tiny_bert_preset(tmp_path / "bert"), 2, sequence_length=8)
    tokens = reviews.map_inputs(bert.preprocessor)
    expected = (r"The model takes one input tensor \(int64 of shape \(None, 6\), 'token_ids'\), but {name} has a "
                r"dict of inputs: " + _ANOTHER_MODELS_TOKENS +
                r"Received: {name} inputs \['padding_mask', 'segment_ids', 'token_ids'\]")
    with pytest.raises(errors.ConfigError, match=expected.format(name="train_data")):
        tfxfer.fine_tune(model, tokens.train, config=_QUICK)
    with pytest.raises(errors.ConfigError, match=expected.format(name="dataset")):
        tfxfer.evaluate_model(model, tokens.validation, reviews.class_names)


def test_inputs_the_model_does_not_take_are_refused_naming_map_inputs(tmp_path, reviews):
    bert = tfxfer.build_text_classifier(save_tiny_bert_preset(tmp_path / "bert"), 2, sequence_length=8)
    tokens = reviews.map_inputs(bert.preprocessor).train.map(
        lambda inputs, labels: ({**inputs, "attention_mask": inputs["padding_mask"]}, labels))
    with pytest.raises(errors.ConfigError, match=r"The model takes inputs \['padding_mask', 'segment_ids', "
                                                 r"'token_ids'\], but train_data also has \['attention_mask'\]: "
                                                 + _ANOTHER_MODELS_TOKENS + r"Received: train_data inputs"):
        tfxfer.fine_tune(bert, tokens, config=_QUICK)


def test_token_ids_past_the_models_vocabulary_are_refused_naming_map_inputs(tmp_path, reviews):
    small = _word_vector_classifier(tmp_path, reviews, max_tokens=6)  # its own vocabulary: 6 tokens
    other = _word_vector_classifier(tmp_path, reviews)
    tokens = reviews.map_inputs(other.preprocessor)
    with pytest.raises(errors.ConfigError, match=r"The model's vocabulary has 6 tokens \(ids 0 to 5\), but train_data "
                                                 r"has token id \d+: the texts were tokenized for another model; .*"
                                                 r"data\.map_inputs\(model\.preprocessor\)\. Received: token ids "
                                                 r"up to \d+ in the first batch of train_data"):
        tfxfer.fine_tune(small, tokens.train, config=_QUICK)
    tfxfer.fine_tune(small, reviews.map_inputs(small.preprocessor).train, config=_QUICK, verbose=0)  # its own: fine
