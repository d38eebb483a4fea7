"""`benchmarks/three_way_split.py`: fit, early-stopping and scoring photos, disjoint and stratified."""

import os
import sys

import numpy as np

from tfxfer.data.splits import split_per_class

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import three_way_split  # noqa: E402


def _photos(root, counts):
    for name, count in counts.items():
        os.makedirs(root / name)
        for index in range(count):
            (root / name / f"{index}.jpg").write_bytes(b"")
        (root / name / "notes.txt").write_text("not a photo")


def _linked(folder):
    """{class: sorted targets of the links} under `folder`."""
    return {name: sorted(os.readlink(os.path.join(folder, name, file))
                         for file in os.listdir(os.path.join(folder, name)))
            for name in sorted(os.listdir(folder))}


def test_the_three_parts_are_disjoint_cover_every_photo_and_keep_each_class_s_share(tmp_path):
    _photos(tmp_path / "train", {"ants": 50, "bees": 30})
    fit_dir, scoring_dir = three_way_split.make(str(tmp_path / "train"), str(tmp_path / "links"), seed=3,
                                                early_stopping_split=0.25)
    parts = [_linked(os.path.join(fit_dir, "train")), _linked(os.path.join(fit_dir, "val")), _linked(scoring_dir)]
    # 20 % of 80 photos score (10 ants, 6 bees); a quarter of the other 64 stop early (10 ants, 6 bees).
    assert [{name: len(files) for name, files in part.items()} for part in parts] == [
        {"ants": 30, "bees": 18}, {"ants": 10, "bees": 6}, {"ants": 10, "bees": 6}]
    for name, count in {"ants": 50, "bees": 30}.items():
        targets = [target for part in parts for target in part[name]]
        assert len(set(targets)) == count == len(targets)
        assert all(target.endswith(".jpg") and os.path.isabs(target) for target in targets)


def test_a_seed_gives_the_same_split_and_another_seed_another(tmp_path):
    _photos(tmp_path / "train", {"ants": 20, "bees": 20})
    scored = [_linked(three_way_split.make(str(tmp_path / "train"), str(tmp_path / folder), seed=seed,
                                           early_stopping_split=0.2)[1])
              for folder, seed in (("a", 0), ("b", 0), ("c", 1))]
    assert scored[0] == scored[1] != scored[2]


def test_photos_are_listed_class_by_class_in_sorted_order_without_other_files(tmp_path):
    _photos(tmp_path, {"bees": 2, "ants": 3})
    class_names, paths, labels = three_way_split.list_photos(str(tmp_path))
    assert class_names == ["ants", "bees"]
    assert [os.path.relpath(path, tmp_path) for path in paths] == [
        "ants/0.jpg", "ants/1.jpg", "ants/2.jpg", "bees/0.jpg", "bees/1.jpg"]
    assert labels.tolist() == [0, 0, 0, 1, 1]


def test_split_indices_cover_every_photo_once_and_score_the_photos_a_two_way_split_scores():
    labels = np.repeat([0, 1], [50, 30])
    fit, early_stopping, scoring = three_way_split.split_indices(labels, seed=3, early_stopping_split=0.25)
    assert sorted([*fit, *early_stopping, *scoring]) == list(range(80))
    assert [np.bincount(labels[part]).tolist() for part in (fit, early_stopping, scoring)] == [
        [30, 18], [10, 6], [10, 6]]
    np.testing.assert_array_equal(scoring, split_per_class(labels, 0.2, 3)[1])
