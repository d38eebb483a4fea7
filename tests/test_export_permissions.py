"""Published versions get the permissions of any folder the user creates.

`tempfile.mkdtemp` makes the staging folder 0o700 and TensorFlow makes its own
folders 0o755 whatever the umask; after `publish` every folder must be 0o777
and every file 0o666, minus the process umask, so that TF Serving running as
another user (e.g. in a container) can read the version when the umask allows.
"""

import contextlib
import os
import stat

import keras
import pytest

import tfxfer
from tfxfer.export import versioning


@contextlib.contextmanager
def _umask(mask):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(folder):
    """`{relative path: permission bits}` of `folder` and everything in it, folders and files apart."""
    folders, files = {".": stat.S_IMODE(os.stat(folder).st_mode)}, {}
    for root, names, file_names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            folders[os.path.relpath(path, folder)] = stat.S_IMODE(os.stat(path).st_mode)
        for name in file_names:
            path = os.path.join(root, name)
            files[os.path.relpath(path, folder)] = stat.S_IMODE(os.stat(path).st_mode)
    return folders, files


def _tiny_classifier():
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs)
    return tfxfer.build_image_classifier(keras.Model(inputs, features, name="tiny"), num_classes=2,
                                         preprocessing="tf", augmentation=False)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """One model exported under umask 0o022 and under 0o077: `{umask: version folder}`."""
    folder = tmp_path_factory.mktemp("permissions")
    model = _tiny_classifier()
    paths = {}
    for mask in (0o022, 0o077):
        with _umask(mask):
            paths[mask] = tfxfer.export_saved_model(model, folder / f"umask_{mask:03o}", class_names=["a", "b"])
    return paths


@pytest.mark.parametrize("mask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_every_folder_and_file_of_a_version_follows_the_umask(exports, mask, folder_mode, file_mode):
    folders, files = _modes(exports[mask])
    # The SavedModel's own parts, so the check cannot pass on an empty tree.
    assert {"assets", "assets.extra", "variables"} <= set(folders)
    assert {"saved_model.pb", os.path.join("assets", "labels.txt")} <= set(files)
    assert folders == dict.fromkeys(folders, folder_mode)
    assert files == dict.fromkeys(files, file_mode)


def test_a_version_is_readable_by_others_under_the_usual_umask(exports):
    version = exports[0o022]
    assert os.stat(version).st_mode & stat.S_IROTH and os.stat(version).st_mode & stat.S_IXOTH
    assert os.stat(os.path.join(version, "saved_model.pb")).st_mode & stat.S_IROTH


def test_publish_opens_up_private_staged_parts(tmp_path):
    with _umask(0o002):
        with versioning.staging_dir(str(tmp_path)) as staging:
            # What mkdtemp and TensorFlow leave behind: private or fixed modes.
            os.mkdir(os.path.join(staging, "variables"), 0o700)
            with open(os.open(os.path.join(staging, "variables", "data"), os.O_CREAT | os.O_WRONLY, 0o600), "w") as f:
                f.write("weights")
            assert stat.S_IMODE(os.stat(staging).st_mode) == 0o700
            target = versioning.publish(staging, str(tmp_path))
    assert _modes(target) == ({".": 0o775, "variables": 0o775}, {os.path.join("variables", "data"): 0o664})


def test_publish_leaves_the_targets_of_symlinks_alone(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the export")
    outside.chmod(0o600)
    base = tmp_path / "base"
    with _umask(0o022):
        with versioning.staging_dir(str(base)) as staging:
            os.symlink(outside, os.path.join(staging, "link"))
            versioning.publish(staging, str(base))
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600


def test_publish_leaves_no_probe_folder_behind(tmp_path):
    with versioning.staging_dir(str(tmp_path)) as staging:
        target = versioning.publish(staging, str(tmp_path))
    assert os.listdir(target) == []
    assert os.listdir(tmp_path) == ["1"]


def test_export_base_that_is_a_file_is_an_error_before_anything_is_written(tmp_path):
    base = tmp_path / "model"
    base.write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError, match=r"export_dir '.*model' is a file; pass a folder.*"
                                                 r"Received: export_dir='.*model'"):
        tfxfer.export_saved_model(_tiny_classifier(), base, class_names=["a", "b"])
    assert sorted(os.listdir(tmp_path)) == ["model"]
    assert base.read_text() == "a file, not a folder"


def test_export_base_under_a_file_is_an_error(tmp_path):
    (tmp_path / "notes").write_text("a file")
    with pytest.raises(NotADirectoryError, match=r"is a file \(its parent '.*notes' is a file\); pass a folder"):
        versioning.check_base_dir(str(tmp_path / "notes" / "model"))


def test_export_base_that_does_not_exist_yet_is_fine(tmp_path):
    versioning.check_base_dir(str(tmp_path / "new" / "model"))
    assert os.listdir(tmp_path) == []  # the check itself writes nothing


def test_remote_paths_are_not_checked_or_chmodded(tmp_path, monkeypatch):
    # gs:// and friends have no POSIX modes; os calls on them would act on a local "gs:" folder.
    monkeypatch.chdir(tmp_path)
    assert not versioning.is_local("gs://bucket/models/flowers")
    versioning.check_base_dir("gs://bucket/models/flowers")
    versioning.share_like_user_folders("gs://bucket/models/flowers/.tmp-export-x")
    assert os.listdir(tmp_path) == []
