"""The layer rule of docs/architecture.md: a module imports, at runtime, only modules of its own
layer or of the layers below. Imports under ``if TYPE_CHECKING:`` are for annotations and do
not count; imports inside functions do (they run)."""

from __future__ import annotations

import ast
from pathlib import Path

import qex_archive

# Lowest first. A module belongs to the first layer one of whose prefixes it starts with.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors", "codes", "_jsonvalues", "_timeutil")),
    ("store", ("store",)),
    ("physics", ("physics",)),
    ("recording", ("recording",)),
    ("views", ("views",)),
    ("transfer", ("remote.transfer",)),
    ("bundle", ("bundle",)),
    ("sync", ("remote",)),
    ("facade", ("",)),  # every other module of the package: archive, run, selection, ...
    ("interface", ("cli", "server", "__main__")),
]
INTERFACE = len(LAYERS) - 1
TYPE_CHECKING_TESTS = ("TYPE_CHECKING", "typing.TYPE_CHECKING")  # not `not TYPE_CHECKING`
# `from qex_archive import open_archive` imports the module that defines it
EXPORTED = {name: module for name, module in qex_archive._EXPORTS.items()}


def layer_of(module: str) -> int:
    """The layer of ``qex_archive.<module>`` (``module`` without the package name)."""
    for rank in (INTERFACE, *range(len(LAYERS) - 1)):
        for prefix in LAYERS[rank][1]:
            if module == prefix or module.startswith(prefix + ".") or prefix == "":
                return rank
    raise AssertionError(module)


def runtime_imports(path: Path, module: str) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every import of the package that runs."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in TYPE_CHECKING_TESTS:
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = ["qex_archive", *package.split(".")] if package else ["qex_archive"]
                    base = parts[: len(parts) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target == "qex_archive" or target.startswith("qex_archive."):
                    if target == "qex_archive":  # a name the package exports: its own module
                        names = [EXPORTED.get(alias.name, alias.name) for alias in child.names]
                    elif child.module is None:  # `from . import tables`: the package's modules
                        names = [f"{target}.{alias.name}" for alias in child.names]
                    else:
                        names = [target]
                    for name in names:
                        found.append((child.lineno, name.removeprefix("qex_archive.")))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("qex_archive."):
                        found.append((child.lineno, alias.name.removeprefix("qex_archive.")))
            elif (
                isinstance(child, ast.Call)
                and ast.unparse(child.func) in ("import_module", "importlib.import_module")
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and str(child.args[0].value).startswith("qex_archive.")
            ):
                found.append((child.lineno, str(child.args[0].value).removeprefix("qex_archive.")))
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def violations(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(parts)
        if not module:
            continue  # the package's __init__ imports lazily, by name, for the API
        own = layer_of(module)
        for line, target in runtime_imports(path, module):
            if target in ("qex_archive", "__version__", "qex_archive.__version__"):
                continue
            if layer_of(target) > own:
                problems.append(
                    f"{path.relative_to(root.parent)}:{line}: {module} ({LAYERS[own][0]}) "
                    f"imports {target} ({LAYERS[layer_of(target)][0]})"
                )
    return problems


def test_no_module_imports_a_higher_layer_at_runtime() -> None:
    assert violations(Path(qex_archive.__file__).parent) == []


def test_the_rule_catches_an_import_from_above(tmp_path: Path) -> None:
    package = tmp_path / "qex_archive"
    (package / "store").mkdir(parents=True)
    (package / "store" / "tables.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..run import Run\n"  # for annotations: allowed
        "from ..errors import QexError\n"  # below: allowed
        "def late():\n"
        "    from ..archive import Archive\n"  # above, at runtime: refused
    )
    (package / "views").mkdir()
    (package / "views" / "page.py").write_text(
        "from .. import bundle\n"
        "from ..cli import main\n"
        "from qex_archive import open_archive\n"  # the module that defines it: opening
        "from typing import TYPE_CHECKING\n"
        "if not TYPE_CHECKING:\n"
        "    from ..remote import sync\n"  # runs: refused
        "import importlib\n"
        "importlib.import_module('qex_archive.export')\n"
    )
    assert [problem.split(": ", 1)[1] for problem in violations(package)] == [
        "store.tables (store) imports archive (facade)",
        "views.page (views) imports bundle (bundle)",
        "views.page (views) imports cli (interface)",
        "views.page (views) imports opening (facade)",
        "views.page (views) imports remote (sync)",
        "views.page (views) imports export (facade)",
    ]
