"""Every public name shows an example in its docstring, and the runnable ones run (issue #11, part 7).

Examples that need user files or downloads (`load_image_folders`, `create_backbone`
with ImageNet weights, `export_saved_model`, ...) are ```python``` blocks; the ones
that run offline in well under a second are doctests (`>>> ...`), run here with
the stdlib `doctest` module against their exact output.
"""

import doctest
import functools
import inspect
import io

import keras
import numpy as np
import pytest

import tfxfer

PUBLIC = [name for name in tfxfer.__all__ if name != "__version__"]

# Docstrings whose example is a doctest: kept runnable (not turned back into prose).
RUNNABLE = {
    "BackbonePreprocessing", "BackboneSpec", "FineTuneConfig", "FineTuneConfig.replace", "HeadKind", "RandomAffine",
    "augment_texts", "chief_or_temp_dir", "create_strategy", "default_image_augmentation", "default_image_size",
    "freeze_backbone", "get_backbone_spec", "global_batch_size", "is_chief", "list_backbones",
    "list_strategies", "scale_learning_rate", "seed_everything", "Task", "unfreeze_top",
}

# What the examples assume the reader imported.
GLOBS = {"tfxfer": tfxfer, "np": np, "keras": keras}
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


# Clearing Keras' session after each of ~80 one-line checks would be most of their time.
CLEAR_SESSION_ONCE = True


def _targets(name):
    """The public object `name` and the public methods its class defines, by dotted name."""
    obj = getattr(tfxfer, name)
    yield name, obj
    if inspect.isclass(obj):
        for attr, value in vars(obj).items():
            if not attr.startswith("_") and inspect.isfunction(value):
                yield f"{name}.{attr}", value


@functools.cache
def _run_doctests(name):
    """{dotted name: (failed, attempted, report)} for the doctests of `name`'s docstrings."""
    finder = doctest.DocTestFinder(recurse=False)
    results = {}
    for dotted, obj in _targets(name):
        for test in finder.find(obj, dotted, module=False, globs=dict(GLOBS)):
            if not test.examples:
                continue
            report = io.StringIO()
            runner = doctest.DocTestRunner(optionflags=OPTIONS)
            failed, attempted = runner.run(test, out=report.write)
            results[dotted] = (failed, attempted, report.getvalue())
    return results


@pytest.mark.parametrize("name", PUBLIC)
def test_public_docstring_has_example(name):
    doc = inspect.getdoc(getattr(tfxfer, name)) or ""
    assert "Example" in doc, f"tfxfer.{name} has no 'Example:' section in its docstring"


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_examples_run(name):
    for dotted, (failed, attempted, report) in _run_doctests(name).items():
        assert failed == 0, f"{failed} of {attempted} doctest examples of tfxfer.{dotted} failed:\n{report}"


def test_doctests_are_not_vacuous():
    results = {dotted: result for name in PUBLIC for dotted, result in _run_doctests(name).items()}
    assert RUNNABLE <= set(results), f"no doctest found in: {sorted(RUNNABLE - set(results))}"
    assert sum(attempted for _, attempted, _ in results.values()) >= 30
