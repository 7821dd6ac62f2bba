"""The notebook views, in a real Jupyter kernel: docs/tutorial.ipynb is executed cell by cell
(so the tutorial cannot rot), twice in one folder (so running it again gives the same
runs), and its HTML outputs are checked. The tutorial is stored executed, so that a reader
on GitHub sees its tables and spheres: the stored outputs are those a fresh execution gives,
and hold no machine's paths or secrets.

After editing the tutorial, store it executed again with
``QEX_UPDATE_TUTORIAL=1 python -m pytest tests/views/test_notebook.py``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
pytest.importorskip("pandas")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "tutorial.ipynb"


def html_of(cell: dict) -> str:  # type: ignore[type-arg]
    return "".join(
        output.get("data", {}).get("text/html", "")
        for output in cell["outputs"]
        if output["output_type"] in ("execute_result", "display_data")
    )


def text_of(cell: dict) -> str:  # type: ignore[type-arg]
    parts = []
    for output in cell["outputs"]:
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "execute_result":
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def execute(folder: Path) -> Any:
    """The tutorial as stored, executed by a fresh kernel whose working directory is
    ``folder``."""
    notebook = nbformat.read(TUTORIAL, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        record_timing=False,  # no timestamps in the cells' metadata
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return notebook


@pytest.fixture(scope="module")
def executions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """The tutorial executed twice, one kernel after the other, in the same folder."""
    folder = tmp_path_factory.mktemp("tutorial")
    return folder, execute(folder), execute(folder)


def check_outputs(notebook: Any) -> None:
    """What the tutorial shows: the archive, the selection and a run as safe HTML (the run
    with its two spheres), the measures, the comparison and the pandas table."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code:
        assert not [o for o in cell["outputs"] if o["output_type"] == "error"], cell["source"]
    archive_view, selection_view, run_view = (html_of(cell) for cell in code[:3])
    assert "bell_sweep" in archive_view and "5 runs" in archive_view
    assert selection_view.count("<tr>") == 6 and "5 runs" in selection_view
    assert run_view.count("<svg") == 2
    for view in (archive_view, selection_view, run_view):
        assert view and "<script" not in view.lower()
    fidelities = ast.literal_eval(text_of(code[3]))
    assert fidelities == pytest.approx([1 - 0.75 * p for p in (0.0, 0.1, 0.2, 0.3, 0.4)])
    assert ast.literal_eval(text_of(code[4])) == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6])
    assert "fidelity" in text_of(code[5]) and "same in all: shots=1024" in text_of(code[5])
    table = html_of(code[6])
    assert "params.p" in table and "purity" in table


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def without_ids_and_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_ids_and_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_ids_and_times(v) for v in value]
    if isinstance(value, str):
        value = re.sub(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", "<run>", value)
        value = re.sub(r"\b[0-9a-f]{8}\b", "<run>", value)
        return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?", "<t>", value)
    return value


def shown(notebook: Any) -> list[tuple[Any, ...]]:
    """What each code cell shows, with what differs from one execution to the next taken
    out: run IDs and times replaced by marks, runs of spaces made one, and every number
    replaced by a mark and listed apart (to be compared to a tolerance: rounding noise of
    1e-16 in an entropy may differ between machines, and changes how pandas prints it)."""
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell["outputs"]:
            kept = {k: v for k, v in output.items() if k not in ("execution_count", "metadata")}
            text = json.dumps(without_ids_and_times(kept), sort_keys=True, ensure_ascii=False)
            numbers = [float(n) for n in NUMBER.findall(text)]
            skeleton = re.sub(r"(?:\\n|\s)+", " ", NUMBER.sub("<n>", text))
            outputs.append((skeleton, numbers))
        cells.append((cell.source, outputs))
    return cells


def assert_same_shown(first: Any, second: Any) -> None:
    a, b = shown(first), shown(second)
    assert [source for source, _ in a] == [source for source, _ in b]
    for (source, outputs_a), (_, outputs_b) in zip(a, b, strict=True):
        assert [s for s, _ in outputs_a] == [s for s, _ in outputs_b], source
        for (_, numbers_a), (_, numbers_b) in zip(outputs_a, outputs_b, strict=True):
            assert numbers_a == pytest.approx(numbers_b, rel=1e-5, abs=1e-9), source


def test_the_tutorial_runs_in_a_kernel_and_shows_safe_html(
    executions: tuple[Path, Any, Any],
) -> None:
    folder, first, _ = executions
    check_outputs(first)
    assert (folder / "tutorial_data" / "qex.db").is_file()


def test_the_tutorial_runs_again_in_the_same_folder_without_runs_piling_up(
    executions: tuple[Path, Any, Any],
) -> None:
    folder, first, second = executions
    check_outputs(second)  # five runs again, not ten
    assert_same_shown(first, second)
    import qex_archive as qa

    with qa.open_archive(folder / "tutorial_data", create=False) as arch:
        assert len(arch.runs()) == 5


def test_the_tutorial_is_stored_executed(executions: tuple[Path, Any, Any]) -> None:
    _, first, _ = executions
    if os.environ.get("QEX_UPDATE_TUTORIAL"):
        nbformat.write(first, TUTORIAL)
    stored = nbformat.read(TUTORIAL, as_version=4)
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    assert all(cell["outputs"] for cell in code), "docs/tutorial.ipynb is stored without outputs"
    assert [cell["execution_count"] for cell in code] == list(range(1, len(code) + 1))
    check_outputs(stored)
    # what a fresh execution shows (store it again after editing the tutorial: see above)
    assert_same_shown(stored, first)
    assert all("execution" not in cell.metadata for cell in stored.cells)


def test_the_stored_tutorial_holds_no_paths_or_secrets(executions: tuple[Path, Any, Any]) -> None:
    folder, first, _ = executions
    text = TUTORIAL.read_text(encoding="utf-8")
    for notebook_text in (text, nbformat.writes(first)):
        found = re.findall(
            r"(?:/home/|/Users/|/root\b|/tmp/|/var/|/private/|/work/|[A-Za-z]:\\\\|site-packages"
            r"|AKIA[0-9A-Z]{16}|-----BEGIN)",
            notebook_text,
        )
        assert found == []
        for private in (str(REPO), str(Path.home()), str(folder), socket.gethostname()):
            assert len(private) < 4 or private not in notebook_text, private
        for name, value in os.environ.items():
            if re.search(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL", name) and len(value) >= 6:
                assert value not in notebook_text, name
