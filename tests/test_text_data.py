"""Tests for the text loaders: each format, detection, split, skipped lines, errors."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import save_tiny_bert_preset, texts_and_labels, write_line_files

import tfxfer
from tfxfer.data import splits, text_batching, text_data, text_files
from tfxfer.errors import ConfigError


def test_line_files_use_extensions_as_classes_and_count_skipped_lines(tmp_path):
    folder = write_line_files(tmp_path / "rt", count=10)
    with open(os.path.join(folder, "reviews.neg"), "ab") as f:
        f.write(b"\xff\xfe not utf-8\n\n   \nbad plot\n")
    data = tfxfer.load_text_data(folder, batch_size=4)
    assert data.source_format == "line_files"
    assert data.class_names == ["neg", "pos"]
    assert data.skipped == {"undecodable": 1, "empty": 2}  # The final newline ends a line, not an empty one.
    assert data.train_class_counts == [11, 10]
    texts, labels = texts_and_labels(data.train)
    assert "bad plot" in texts and labels[texts.index("bad plot")] == 0
    assert data.validation is None and data.validation_size == 0


def test_texts_of_a_split_the_data_lacks_or_of_an_unknown_one_are_refused(tmp_path):
    data = tfxfer.load_text_data(write_line_files(tmp_path / "rt", count=6), batch_size=4)  # no validation part
    assert sorted(text.decode() for text in data.texts("train").unbatch().as_numpy_iterator()) == sorted(
        texts_and_labels(data.train)[0])
    with pytest.raises(ConfigError, match=r"no validation part: load it with validation_split.*split='validation'"):
        data.texts("validation")
    with pytest.raises(ConfigError, match=r"split must be 'train' or 'validation'\. Received: split='test'"):
        data.texts("test")


def test_data_without_a_validation_part_is_warned_about_as_images_are(tmp_path, caplog):
    folder = write_line_files(tmp_path / "rt", count=6)
    with caplog.at_level("WARNING", logger="absl"):
        tfxfer.load_text_data(folder, batch_size=4)
    assert (f"No validation data: {folder!r} has no validation part, and none of it is held out. Pass "
            "validation_split=0.1 (for example; recipes: --validation_split=0.1) to hold out") in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="absl"):
        tfxfer.load_text_data(folder, batch_size=4, validation_split=0.25)
    assert "No validation data" not in caplog.text


def test_line_file_class_names_fall_back_to_stems_then_names():
    assert text_files.line_file_class_names(["x.pos", "x.neg"]) == ["pos", "neg"]
    assert text_files.line_file_class_names(["good.txt", "bad.txt"]) == ["good", "bad"]
    assert text_files.line_file_class_names(["a.txt", "a.md", "b.txt"]) == ["a.txt", "a.md", "b.txt"]


def test_validation_split_is_seeded_and_per_class(tmp_path):
    folder = write_line_files(tmp_path / "rt", count=20)
    first = tfxfer.load_text_data(folder, batch_size=8, validation_split=0.25, seed=3)
    again = tfxfer.load_text_data(folder, batch_size=8, validation_split=0.25, seed=3)
    other = tfxfer.load_text_data(folder, batch_size=8, validation_split=0.25, seed=4)
    assert (first.train_size, first.validation_size) == (30, 10)
    assert first.train_class_counts == [15, 15]
    assert texts_and_labels(first.validation) == texts_and_labels(again.validation)
    assert texts_and_labels(first.validation) != texts_and_labels(other.validation)
    assert sorted(texts_and_labels(first.train)[0] + texts_and_labels(first.validation)[0]) == sorted(texts_and_labels(other.train)[0] + texts_and_labels(other.validation)[0])
    assert np.bincount(texts_and_labels(first.validation)[1]).tolist() == [5, 5]


def test_texts_beside_the_class_folders_of_train_and_val_are_named_as_not_read(tmp_path, caplog):
    for split in ("train", "val"):
        for name in ("ham", "spam"):
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "0.txt").write_text(f"{name} message", encoding="utf-8")
    (tmp_path / "train" / "stray.txt").write_text("which class?", encoding="utf-8")
    (tmp_path / "val" / "notes.md").write_text("how they were labelled", encoding="utf-8")
    with caplog.at_level("WARNING", logger="absl"):
        data = tfxfer.load_text_data(str(tmp_path), batch_size=2)
    assert (data.train_size, data.validation_size) == (2, 2)
    # (Beside class folders in the data folder itself, files are an error: a folder of class files, or not.)
    for folder, name in (("train", "stray.txt"), ("val", "notes.md")):
        assert (f"Not read: 1 file in {str(tmp_path / folder)!r} beside the class folders, in no class: "
                f"['{name}']") in caplog.text


def test_class_folders_one_text_per_file_with_train_and_val(tmp_path):
    for split, count in (("train", 3), ("val", 2)):
        for name in ("ham", "spam"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i}.txt").write_text(f"{name} message {i}\nsecond line", encoding="utf-8")
    (tmp_path / "train" / "spam" / "bad.txt").write_bytes(b"\xc3\x28")
    (tmp_path / "train" / "ham" / "empty.txt").write_bytes(b" \n")
    data = tfxfer.load_text_data(str(tmp_path), batch_size=2)
    assert data.source_format == "class_folders"
    assert data.class_names == ["ham", "spam"]
    assert (data.train_size, data.validation_size) == (6, 4)
    assert data.skipped == {"undecodable": 1, "empty": 1}
    texts, labels = texts_and_labels(data.validation)
    assert "spam message 1\nsecond line" in texts
    assert labels[texts.index("spam message 1\nsecond line")] == 1


def test_texts_in_folders_of_a_class_folder_are_read_as_for_images_and_keras(tmp_path):
    files = {"ham/1.txt": "ham one", "ham/2019/2.txt": "ham two", "ham/2019/03/3.txt": "ham three",
             "spam/1.txt": "spam one", "spam/.ipynb_checkpoints/1-checkpoint.txt": "spam one",
             "spam/old/.DS_Store": "\x00", "spam/old/2.txt": "spam two"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    data = tfxfer.load_text_data(str(tmp_path))
    texts, labels = texts_and_labels(data.train)
    assert sorted(zip(labels, texts)) == [(0, "ham one"), (0, "ham three"), (0, "ham two"),
                                          (1, "spam one"), (1, "spam two")]
    assert data.skipped == {"undecodable": 0, "empty": 0}
    # ram:// matches names by prefix: beside ham2/, it lists ham/2019/ also as a folder "2" holding a file "019"
    # that is not there, which must not be read.
    for name in ("ham/1.txt", "ham/2019/2.txt", "ham2/1.txt"):
        tf.io.gfile.makedirs(os.path.dirname(f"ram://nested_texts/{name}"))
        with tf.io.gfile.GFile(f"ram://nested_texts/{name}", "w") as f:
            f.write("text")
    assert text_files.files_under("ram://nested_texts/ham") == ["1.txt", "2019/2.txt"]


def test_a_validation_split_beside_a_validation_folder_is_refused_as_for_images(tmp_path):
    for split in ("Training", "valid"):
        for name in ("ham", "spam"):
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "1.txt").write_text(f"{name} message", encoding="utf-8")
    # Splitting Training/ would leave valid/ unread, or the other way round: neither is guessed.
    with pytest.raises(ConfigError, match=re.escape(
            f"{str(tmp_path)!r} already has a validation folder ({str(tmp_path / 'valid')!r}), so validation_split "
            "cannot also carve one out of Training/. Drop validation_split (recipes: leave --validation_split unset, "
            "or 0) to validate on that folder, or remove the validation folder to split Training/ instead. "
            "Received: validation_split=0.5")):
        tfxfer.load_text_data(str(tmp_path), validation_split=0.5)
    assert tfxfer.load_text_data(str(tmp_path)).validation_size == 2


@pytest.mark.parametrize("extension,delimiter", [("csv", ","), ("tsv", "\t")])
def test_csv_and_tsv_with_named_columns(tmp_path, extension, delimiter):
    path = tmp_path / f"reviews.{extension}"
    rows = [["id", "review", "sentiment"], ["1", "a great film", "positive"], ["2", "boring, really", "negative"],
            ["3", "", "negative"], ["4", "fine", "positive"]]
    lines = [delimiter.join(f'"{cell}"' if "," in cell else cell for cell in row) for row in rows]
    content = ("\n".join(lines) + "\n").encode() + delimiter.join(["5", "caf\xe9", "negative"]).encode("latin-1") + b"\n"
    path.write_bytes(content)
    data = tfxfer.load_text_data(str(path), batch_size=8, text_column="review", label_column="sentiment")
    assert data.source_format == "csv"
    assert data.class_names == ["negative", "positive"]
    assert data.skipped == {"undecodable": 1, "empty": 1}
    texts, labels = texts_and_labels(data.train)
    assert sorted(zip(texts, labels)) == [("a great film", 1), ("boring, really", 0), ("fine", 1)]


def test_csv_missing_column_says_which_columns_exist(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("sentence,label\nhello,a\nbye,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no column 'text'; its columns are \['sentence', 'label'\]"):
        tfxfer.load_text_data(str(path))


def test_detect_format_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No text data at this path"):
        text_data.detect_format(str(tmp_path / "missing"))
    (tmp_path / "notes.json").write_text("{}")
    with pytest.raises(ValueError, match="must be .csv or .tsv"):
        text_data.detect_format(str(tmp_path / "notes.json"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="not both"):
        text_data.detect_format(str(tmp_path))


def test_a_folder_holding_csv_files_is_refused_not_read_as_line_files(tmp_path):
    # Kaggle's layout: passing the folder used to train a "test" vs "train" classifier on raw CSV lines.
    (tmp_path / "train.csv").write_text("text,label\ngood film,pos\nbad film,neg\n")
    (tmp_path / "test.csv").write_text("text\nfine film\n")
    with pytest.raises(ConfigError, match=re.escape(
            f"holds ['test.csv', 'train.csv']: read so, their lines (header included) would become texts of classes "
            f"named after the files. Pass the .csv/.tsv file itself as the path (recipes: "
            f"--data_dir={tmp_path / 'test.csv'}), the one that holds the labelled texts for this use.")):
        tfxfer.load_text_data(str(tmp_path))


def test_loader_argument_errors(tmp_path):
    folder = write_line_files(tmp_path / "rt", count=4)
    with pytest.raises(ValueError, match="validation_split must be None or a fraction"):
        tfxfer.load_text_data(folder, validation_split=1.5)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        tfxfer.load_text_data(folder, batch_size=0)
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.txt").write_text("x\n")
    (one / "b.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"Every class folder or file needs at least one usable text.*b\.txt"):
        tfxfer.load_text_data(str(one))


def test_split_keeps_one_training_example_per_class():
    # The one split of every loader (tfxfer.data.splits, tested in test_data_splits.py).
    _, validation = splits.split_per_class(np.array([0, 0, 1, 1, 1, 1]), 0.9, seed=0)
    mask = np.isin(np.arange(6), validation)
    assert mask[:2].sum() == 1 and mask[2:].sum() == 3


def test_layout_errors_name_what_was_found(tmp_path):
    (tmp_path / "one_class" / "only").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"at least 2 class folders .* Received: \['only'\]"):
        tfxfer.load_text_data(str(tmp_path / "one_class"))
    (tmp_path / "one_file").mkdir()
    (tmp_path / "one_file" / "texts.pos").write_text("good\n")
    with pytest.raises(ValueError, match=r"at least 2 class files .* Received: \['texts.pos'\]"):
        tfxfer.load_text_data(str(tmp_path / "one_file"))
    for split, names in (("train", ["a", "b"]), ("val", ["a", "c"])):
        for name in names:
            (tmp_path / "splits" / split / name).mkdir(parents=True)
            (tmp_path / "splits" / split / name / "1.txt").write_text("text")
    with pytest.raises(ValueError, match=r"Validation classes must also be training classes. Received: \['c'\]"):
        tfxfer.load_text_data(str(tmp_path / "splits"))


def _write_tickets(path):
    rows = ["text,tags", "card charged twice,billing|urgent", "invoice copy please,billing",
            "site down now,urgent | outage|urgent", "login page slow,outage", "refund for outage,billing|outage",
            "no tags at all,", "separators only,|", "another bill,billing"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def test_multi_label_csv_gives_multi_hot_labels_and_counts_examples_per_class(tmp_path):
    data = tfxfer.load_text_data(_write_tickets(tmp_path / "tickets.csv"), batch_size=4, label_column="tags",
                                 label_separator="|")
    assert data.multi_label and data.summary()["multi_label"]
    assert data.class_names == ["billing", "outage", "urgent"]
    assert data.skipped == {"undecodable": 0, "empty": 0, "no_label": 2}
    assert data.train_class_counts == [4, 3, 2]
    texts, labels = texts_and_labels(data.train)
    by_text = dict(zip(texts, labels))
    assert by_text["card charged twice"] == [1.0, 0.0, 1.0]
    assert by_text["site down now"] == [0.0, 1.0, 1.0]  # Spaces stripped, the repeated class counted once.
    assert by_text["invoice copy please"] == [1.0, 0.0, 0.0]
    assert next(iter(data.train))[1].dtype.name == "float32"


def test_multi_label_split_is_seeded_and_keeps_the_rarest_class_on_both_sides(tmp_path):
    rows = ["text,tags"] + [f"common {i},a" for i in range(16)] + [f"both {i},a|rare" for i in range(4)]
    (tmp_path / "tags.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    load = lambda seed: tfxfer.load_text_data(str(tmp_path / "tags.csv"), label_column="tags",  # noqa: E731
                                              label_separator="|", validation_split=0.25, seed=seed)
    data, same = load(0), load(0)
    assert (data.train_size, data.validation_size) == (15, 5)
    assert data.train_class_counts == [15, 3]
    assert np.sum(texts_and_labels(data.validation)[1], axis=0).tolist() == [5.0, 1.0]
    assert texts_and_labels(data.validation) == texts_and_labels(same.validation)


def test_stratification_keys_pick_each_examples_rarest_class():
    multi_hot = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1], [0, 1, 1], [1, 0, 0]], np.float32)
    assert text_data.stratification_keys(multi_hot).tolist() == [1, 0, 2, 1, 0]  # Counts 4, 2, 2: ties go to 1.


def test_a_label_separator_that_splits_no_cell_is_warned_about(tmp_path, caplog):
    # "," taken for the file's delimiter: every row keeps one class, and the data would train a multi-label model.
    (tmp_path / "reviews.csv").write_text("text,label\ngood film,pos\ndull plot,neg\nfine,pos\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="absl"):
        data = tfxfer.load_text_data(str(tmp_path / "reviews.csv"), label_separator=",")
    assert data.multi_label
    assert ("label_separator=',' split no label cell of " in caplog.text
            and "leave label_separator (--label_separator) out" in caplog.text)
    caplog.clear()
    with caplog.at_level("WARNING", logger="absl"):
        tfxfer.load_text_data(_write_tickets(tmp_path / "tickets.csv"), label_column="tags", label_separator="|")
    assert "split no label cell" not in caplog.text


def test_label_separator_errors(tmp_path):
    folder = write_line_files(tmp_path / "rt", count=4)
    with pytest.raises(ValueError, match="label_separator applies to .csv/.tsv data only.*line_files"):
        tfxfer.load_text_data(folder, label_separator="|")
    with pytest.raises(ValueError, match="label_separator must be None or a non-empty string"):
        tfxfer.load_text_data(_write_tickets(tmp_path / "t.csv"), label_column="tags", label_separator="")


def _varied_lengths(tmp_path, count=90):
    # Word counts 1..60 (several buckets), each text unique.
    rng = np.random.default_rng(0)
    rows = ["text,label"] + [" ".join(["word"] * int(rng.integers(1, 60))) + f" n{i},{'ab'[i % 2]}"
                             for i in range(count)]
    (tmp_path / "varied.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(tmp_path / "varied.csv")


def test_bucketed_batches_are_counted_up_front_and_hold_one_length_bucket(tmp_path):
    data = tfxfer.load_text_data(_varied_lengths(tmp_path), batch_size=8)
    batches = [texts.numpy() for texts, _ in data.train]
    assert int(data.train.cardinality()) == len(batches)
    buckets = np.bincount(text_batching.length_buckets([t.decode() for b in batches for t in b]))
    assert len(batches) == sum(-(-int(n) // 8) for n in buckets) > -(-90 // 8)
    for batch in batches:
        assert len(batch) <= 8 and len(set(text_batching.length_buckets([t.decode() for t in batch]))) == 1


def test_bucketed_epochs_hold_every_text_once_in_a_new_seeded_order(tmp_path):
    path = _varied_lengths(tmp_path)
    data = tfxfer.load_text_data(path, batch_size=8, seed=1)
    first, second = texts_and_labels(data.train)[0], texts_and_labels(data.train)[0]
    assert sorted(first) == sorted(second) and len(set(first)) == 90
    assert first != second
    assert texts_and_labels(tfxfer.load_text_data(path, batch_size=8, seed=1).train)[0] == first


def test_without_bucketing_and_for_validation_batches_are_plain(tmp_path):
    path = _varied_lengths(tmp_path)
    data = tfxfer.load_text_data(path, batch_size=8, bucket_by_length=False, validation_split=0.2)
    assert int(data.train.cardinality()) == -(-72 // 8)
    assert [len(texts) for texts, _ in data.validation] == [8, 8, 2]
    bucketed = tfxfer.load_text_data(path, batch_size=8, validation_split=0.2)
    assert texts_and_labels(bucketed.validation) == texts_and_labels(data.validation)  # In order, the same split.


def test_map_inputs_regroups_training_batches_by_token_count(tmp_path):
    # One word with n commas is n + 1 tokens (BERT splits punctuation): word buckets cannot tell these apart.
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 25, 80)
    rows = ["text,label"] + [f'"{"good" + "," * int(n) if i % 2 else " ".join(["bad"] * int(n))}",{"ab"[i % 2]}'
                             for i, n in enumerate(lengths)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    preset = save_tiny_bert_preset(tmp_path / "bert")
    preprocessor = tfxfer.models.backbones.hub_text.load_hub_backbone(preset, sequence_length=32).preprocessor
    data = tfxfer.load_text_data(str(tmp_path / "t.csv"), batch_size=8, seed=3)

    def epoch(tokenized):
        return [(inputs["padding_mask"].numpy(), labels.numpy()) for inputs, labels in tokenized.train]

    by_tokens = epoch(data.map_inputs(preprocessor))
    by_words = epoch(data.map_inputs(preprocessor, trim_padding=False))  # untrimmed: word-bucketed batches
    packed = np.sort(np.concatenate([mask.sum(axis=1) for mask, _ in by_tokens]))
    tokens = lengths + np.arange(len(lengths)) % 2  # the commas and "good"
    assert np.array_equal(packed, np.sort(tokens + 2))  # every text once, with [CLS] and [SEP]
    assert int(data.map_inputs(preprocessor).train.cardinality()) == len(by_tokens)
    for mask, _ in by_tokens:
        assert len(set((mask.sum(axis=1) - 1) // 8)) == 1  # one 8-token bucket per batch
        assert mask.shape[1] <= 8 * ((mask.sum(axis=1).max() - 1) // 8 + 1)  # trimmed within the bucket
    # What the word-bucketed batches would trim to, at the same multiple of 8.
    word_trimmed = sum(len(mask) * 8 * -(-mask.sum(axis=1).max() // 8) for mask, _ in by_words)
    assert sum(mask.size for mask, _ in by_tokens) < 0.8 * word_trimmed


def test_map_inputs_refuses_what_cannot_be_called_naming_the_fix(tmp_path):
    data = tfxfer.load_text_data(write_line_files(tmp_path / "rt", count=4), batch_size=4)
    with pytest.raises(ConfigError, match=r"preprocessor must be callable.*data\.map_inputs\(model\.preprocessor\).*"
                                          r"Received: preprocessor=None"):
        data.map_inputs(None)


def test_a_csv_with_only_a_header_says_it_has_no_rows(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"reviews\.csv has a header but no rows: add one row per text below it\. "
                                          r"Received: only the header \['text', 'label'\]"):
        tfxfer.load_text_data(str(path))


@pytest.mark.parametrize("name,content,header", [
    ("reviews.csv", b"", r"\['text', 'label'\] separated by ','"),
    ("reviews.csv", b"\xef\xbb\xbf\n\r\n\n", r"\['text', 'label'\] separated by ','"),
    ("reviews.tsv", b"\n", r"\['text', 'label'\] separated by tabs"),
])
def test_an_empty_csv_says_it_is_empty_and_what_it_needs(tmp_path, name, content, header):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=rf"{re.escape(name)} is empty: it needs a header row naming its columns, "
                                          rf"{header}, then one row per text below it\. Received: an empty file "
                                          rf"\(or only blank lines\) at {re.escape(repr(str(path)))}$"):
        tfxfer.load_text_data(str(path))


def test_an_empty_multi_task_csv_names_its_label_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"reviews\.csv is empty: it needs a header row naming its columns, "
                                          r"\['review', 'topic', 'tone'\] separated by ','"):
        tfxfer.load_text_data(str(path), text_column="review", label_columns=["topic", "tone"])


def test_blank_lines_before_a_csv_header_are_skipped(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("\n\ntext,label\na great film,positive\nboring,negative\nfine,positive\n", encoding="utf-8")
    data = tfxfer.load_text_data(str(path), batch_size=8, validation_split=None)
    assert data.class_names == ["negative", "positive"]
    texts, labels = texts_and_labels(data.train)
    assert sorted(zip(texts, labels)) == [("a great film", 1), ("boring", 0), ("fine", 1)]


@pytest.mark.parametrize("name,delimiter,fix", [
    ("reviews.csv", ";", r"save it separated by ',' \(as \.csv\) or by tabs \(as \.tsv\)"),
    ("reviews.tsv", ",", r"name it \.csv"),
])
def test_a_csv_with_another_delimiter_says_how_to_read_it(tmp_path, name, delimiter, fix):
    path = tmp_path / name
    path.write_text(f"text{delimiter}label\ngood{delimiter}pos\nbad{delimiter}neg\n", encoding="utf-8")
    read_with = re.escape(repr("\t" if name.endswith(".tsv") else ","))
    with pytest.raises(ConfigError, match=rf"its columns are \['text{delimiter}label'\].*the file looks separated by "
                                          rf"'{delimiter}', not {read_with}: {fix}\. Received: text_column='text'"):
        tfxfer.load_text_data(str(path))
