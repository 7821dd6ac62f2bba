"""The notebook views, in a real Jupyter kernel: docs/tutorial.ipynb is executed cell by cell
(so the tutorial cannot rot) and its HTML outputs are checked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
pytest.importorskip("pandas")

TUTORIAL = Path(__file__).parents[2] / "docs" / "tutorial.ipynb"


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


@pytest.mark.slow
def test_the_tutorial_runs_in_a_kernel_and_shows_safe_html(tmp_path: Path) -> None:
    notebook = nbformat.read(TUTORIAL, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
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
    assert (tmp_path / "tutorial_data" / "qex.db").is_file()
