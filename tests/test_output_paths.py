"""No command writes a file the user names inside the archive's directory (its paths resolved,
links followed) or over one of its stored files: one rule (store.paths.refuse_archive_output)
for every command that writes a user-named file, tested over all of them."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import pytest

import qex_archive as qa
from qex_archive.cli import COMMAND_MODULES, cli
from qex_archive.export import export_runs
from qex_archive.store.integrity import check_archive
from qex_archive.views.report import write_reports

from .cli_tools import invoke, one_line_error
from .conftest import snapshot

# Every command with a path parameter it writes to (an output file or a directory to fill),
# and how to call it with that path. A new command that writes a user-named file must be
# added here (test_every_writing_command_is_covered fails until it is).
COMMANDS: dict[str, Callable[[str, Path], list[str]]] = {
    "export": lambda target, bundle: ["export", "-o", target, "-f", "csv"],
    "pack": lambda target, bundle: ["pack", "-o", target],
    "report": lambda target, bundle: ["report", "-o", target],
    "unpack": lambda target, bundle: ["unpack", str(bundle), target],
}
WRITTEN_PARAMS = {"output", "directory"}


def test_every_writing_command_is_covered() -> None:
    for module in set(COMMAND_MODULES.values()):
        try:
            importlib.import_module(f"qex_archive.cli.{module}")
        except ModuleNotFoundError as exc:  # a command module still being written elsewhere
            if exc.name != f"qex_archive.cli.{module}":
                raise
    writing = set()

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, f"{prefix}{name} ")
            for param in command.params:
                if isinstance(param.type, click.Path) and param.name in WRITTEN_PARAMS:
                    writing.add(f"{prefix}{name}")

    walk(cli, "")
    assert writing == set(COMMANDS)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, qa.Run]:
    root = tmp_path / "qex_data"
    with qa.open_archive(root) as arch:
        arch.capture = False
        run = arch.record("e", params={"p": 1}, backend="b", state=np.eye(2) / 2)
        assert run.artifacts  # read while the archive is open
        arch.record("e", params={"p": 2}, backend="b", state=np.eye(2) / 2)
        bundle = tmp_path / "elsewhere" / "b.qexb"
        bundle.parent.mkdir()
        qa.pack_bundle(arch, bundle)
    return root, bundle, run


def bad_targets(root: Path, run: qa.Run, outside: Path) -> dict[str, Path]:
    """Outputs that would land inside the archive or over its files, by every route."""
    rho = root / run.density_matrix_path
    page = root / run.artifacts[0].relative_path
    outside.mkdir(exist_ok=True)
    (outside / "to_root").symlink_to(root, target_is_directory=True)
    (outside / "to_results").symlink_to(root / "results", target_is_directory=True)
    (outside / "to_db").symlink_to(root / "qex.db")
    (outside / "dangling_to_new").symlink_to(root / "new.csv")
    os.link(root / "qex.db", outside / "db_hardlink.csv")
    os.link(rho, outside / "rho_hardlink.csv")
    os.link(page, outside / "page_hardlink.html")
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports" / "sneaky").symlink_to(root / "results", target_is_directory=True)
    return {
        "the database": root / "qex.db",
        "a density matrix": rho,
        "a page": page,
        "a new file in the archive": root / "new.csv",
        "a new file in results/": root / "results" / "new.csv",
        "the archive itself": root,
        "results/": root / "results",
        "a dotted way in": outside / ".." / root.name / "qex.db",
        "through a directory link": outside / "to_root" / "qex.db",
        "through a link to results/": outside / "to_results" / run.density_matrix_path[8:],
        "a link to the database": outside / "to_db",
        "a dangling link into the archive": outside / "dangling_to_new",
        "a hard link to the database": outside / "db_hardlink.csv",
        "a hard link to a density matrix": outside / "rho_hardlink.csv",
        "a hard link to a page": outside / "page_hardlink.html",
        "through a link in reports/": root / "reports" / "sneaky" / "x.html",
    }


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_command_writes_inside_the_archive_or_over_its_files(
    setup: tuple[Path, Path, qa.Run], tmp_path: Path, command: str
) -> None:
    root, bundle, run = setup
    targets = bad_targets(root, run, tmp_path / "outside")
    before = snapshot(root)
    linked = {p: p.read_bytes() for p in (tmp_path / "outside").iterdir() if p.is_file()}
    for why, target in targets.items():
        if command == "unpack" and why.startswith("a hard link"):
            continue  # unpack makes a directory: no file of that name can be written over
        result = invoke(root, *COMMANDS[command](str(target), bundle))
        if result.exit_code == 2:  # click's refusal: a directory for a file, or the reverse
            refused = "is a directory" if target.is_dir() else "is a file"
            assert refused in result.output and target.exists(), (command, why)
        else:
            one_line_error(result, "archive")
        assert snapshot(root) == before, (command, why)
        assert {p: p.read_bytes() for p in linked} == linked, (command, why)
    with qa.open_archive(root) as arch:
        assert check_archive(arch) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_outputs_outside_the_archive_are_written(
    setup: tuple[Path, Path, qa.Run], tmp_path: Path, command: str
) -> None:
    root, bundle, _ = setup
    suffix = {"export": "x.csv", "pack": "x.qexb", "report": "x.html", "unpack": "new_archive"}
    target = tmp_path / "out" / suffix[command]
    target.parent.mkdir()
    result = invoke(root, *COMMANDS[command](str(target), bundle))
    assert result.exit_code == 0, result.output
    assert target.exists()


def test_the_reports_folder_of_the_archive_stays_usable(setup: tuple[Path, Path, qa.Run]) -> None:
    root, _, _ = setup
    assert invoke(root, "report").exit_code == 0  # the default: reports/ in the archive
    assert (root / "reports" / "e.html").is_file()
    result = invoke(root, "report", "-o", str(root / "reports" / "all.html"))
    assert result.exit_code == 0 and (root / "reports" / "all.html").is_file()


def test_a_report_page_over_a_stored_file_is_refused(
    setup: tuple[Path, Path, qa.Run], tmp_path: Path
) -> None:
    root, _, _ = setup
    pages = tmp_path / "pages"
    pages.mkdir()
    os.link(root / "qex.db", pages / "e.html")  # the page of experiment "e" would replace it
    before = snapshot(root)
    one_line_error(invoke(root, "report", "-o", str(pages)), "hard link")
    assert snapshot(root) == before


def test_the_library_refuses_too(setup: tuple[Path, Path, qa.Run]) -> None:
    root, _, _ = setup
    with qa.open_archive(root) as arch:
        with pytest.raises(qa.InvalidInput, match="inside the archive"):
            export_runs(arch, qa.RunFilter(), root / "qex.db", format="csv")
        with pytest.raises(qa.InvalidInput, match="inside the archive"):
            write_reports(arch.runs(), root / "artifacts", one_page=False)
    assert qa.open_archive(root).runs().__len__() == 2
