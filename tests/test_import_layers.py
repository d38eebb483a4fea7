"""Imports run one way through tfxfer: data -> models -> training -> export, read from the source,
so that a later change cannot quietly bring back an upward import, a cycle or a function-level import."""

import ast
import pathlib

import pytest

import tfxfer

PACKAGE = pathlib.Path(tfxfer.__file__).parent
# Each part of the package, and the parts it may import besides itself. `data` and `models`
# are siblings: neither needs the other (a model's preprocessor runs in tf.data through the
# function it is given).
FOUNDATION = ("tfxfer.errors", "tfxfer.version", "tfxfer.defaults", "tfxfer.reproducibility", "tfxfer.tasks")
ALLOWED = {
    "tfxfer.errors": (),
    # Head kinds and tasks: what loaders label and builders make heads for.
    "tfxfer.tasks": ("tfxfer.errors",),
    "tfxfer.version": (),
    "tfxfer.reproducibility": (),
    "tfxfer.defaults": (),
    "tfxfer.distribute": ("tfxfer.errors",),
    "tfxfer.data": FOUNDATION,
    "tfxfer.models": FOUNDATION,
    "tfxfer.training": (*FOUNDATION, "tfxfer.distribute", "tfxfer.models"),
    # Hyperparameter search: trials trained by the training's phases, on a held-out share of the data.
    "tfxfer.tuning": (*FOUNDATION, "tfxfer.distribute", "tfxfer.data", "tfxfer.models", "tfxfer.training"),
    "tfxfer.export": (*FOUNDATION, "tfxfer.data", "tfxfer.models"),
    # TensorFlow only: an export's names, its version folders, the data constants, the text files' encoding and
    # which files of a folder count (the loaders' listing rules).
    "tfxfer.prediction": (*FOUNDATION, "tfxfer.data.constants", "tfxfer.data.text_encoding", "tfxfer.data.layout",
                          "tfxfer.export.layout", "tfxfer.export.versioning"),
    # Pictures from plain numbers: nothing of tfxfer but the foundation.
    "tfxfer.reports": FOUNDATION,
    # Reports on a trained model or an export, on data read by the loaders.
    "tfxfer.evaluation": (*FOUNDATION, "tfxfer.data", "tfxfer.models", "tfxfer.export", "tfxfer.prediction"),
}


def _modules():
    """`{dotted module name: path}` of every module of the package but its root `__init__`."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1:
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(path):
    """`(tfxfer module imported, at module level?)` for each tfxfer import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from tfxfer.training import backup` imports the module tfxfer.training.backup.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(_module(name), id(node) in top_level) for name in names if name.startswith("tfxfer.")]
    return found


def _module(name):
    """The module a dotted import name refers to (dropping an imported function or class)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _part(module):
    return next(part for part in sorted(ALLOWED, key=len, reverse=True) if module == part or
                module.startswith(part + "."))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_its_own_part_and_the_parts_below_at_module_level(module):
    part = _part(module)
    for name, top_level in _imports(MODULES[module]):
        assert top_level, f"{module} imports {name} inside a function"
        assert name.startswith((part, *ALLOWED[part])), f"{module} ({part}) imports {name}, which sits above it"


def test_modules_import_each_other_without_cycles():
    edges = {module: {name for name, _ in _imports(path)} - {module} for module, path in MODULES.items()}
    done, visiting = set(), []

    def visit(module):
        assert module not in visiting, f"import cycle: {' -> '.join(visiting[visiting.index(module):] + [module])}"
        if module in done or module not in edges:
            return
        visiting.append(module)
        for imported in edges[module]:
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in MODULES:
        visit(module)
