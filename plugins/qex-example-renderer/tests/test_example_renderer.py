"""The example plugin: the renderer on its own, then through a real archive and CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import qex_example_renderer
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.cli import cli
from qex_archive.plugins import make_plugin_manager


@pytest.fixture(autouse=True)
def _load_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QEX_ARCHIVE_LOAD_PLUGINS", raising=False)


def test_heatmap_is_valid_svg_with_one_cell_per_entry() -> None:
    rho = np.diag([0.75, 0.25]).astype(complex)
    svg = ET.fromstring(qex_example_renderer.heatmap_svg(rho, "t"))
    rects = svg.findall("{http://www.w3.org/2000/svg}rect")
    assert len(rects) == 4
    fills = [r.get("fill") for r in rects]
    assert fills[0] == "rgb(55,55,255)" and fills[1] == "rgb(255,255,255)"


def test_heatmap_of_a_large_matrix_is_bounded() -> None:
    svg = ET.fromstring(qex_example_renderer.heatmap_svg(np.eye(256) / 256))
    assert len(svg.findall("{http://www.w3.org/2000/svg}rect")) == 64 * 64


def test_discovered_through_its_entry_point(tmp_path: Path) -> None:
    pm = make_plugin_manager()
    assert pm.get_plugin("example_renderer") is qex_example_renderer
    with qa.open_archive(tmp_path / "a", plugins=pm) as arch:
        run = arch.record("e", backend="b", state=np.eye(4) / 4)
        names = {a.name: a for a in run.artifacts}
        assert set(names) == {"bloch", "heatmap"}
        assert names["heatmap"].media_type == "image/svg+xml"
        assert names["heatmap"].path.name == f"{run.run_id}_heatmap.svg"
        ET.fromstring(names["heatmap"].path.read_bytes())
        assert run.metadata["qex"]["plugins"]["example_renderer"] == "0.1.0"


def test_switched_off_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QEX_ARCHIVE_LOAD_PLUGINS", "")
    assert make_plugin_manager().get_plugin("example_renderer") is None
    with qa.open_archive(tmp_path / "a") as arch:
        run = arch.record("e", backend="b", state=np.eye(2) / 2)
        assert [a.name for a in run.artifacts] == ["bloch"]
    monkeypatch.setenv("QEX_ARCHIVE_LOAD_PLUGINS", "qex-example-renderer")
    assert make_plugin_manager().get_plugin("example_renderer") is qex_example_renderer


def test_listed_by_the_plugins_command() -> None:
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("example_renderer"))
    assert "0.1.0" in line and "qex_register_commands" in line and "qex_register_renderers" in line


def test_its_command_is_on_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "a"
    with qa.open_archive(data) as arch:
        run = arch.record("e", backend="b", state=np.eye(2) / 2)
    env = {**os.environ, "QEX_DATA": str(data)}
    help_text = subprocess.run(
        [sys.executable, "-m", "qex_archive", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "heatmap" in help_text
    out = tmp_path / "rho.svg"
    done = subprocess.run(
        [sys.executable, "-m", "qex_archive", "heatmap", run.run_id[:8], "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert done.stdout.strip() == str(out)
    assert len(ET.fromstring(out.read_bytes()).findall("{http://www.w3.org/2000/svg}rect")) == 4


def test_listing_commands_with_the_plugin_installed_does_not_import_numpy() -> None:
    script = (
        "import sys\n"
        "from qex_archive.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('NUMPY' if 'numpy' in sys.modules else 'NO-NUMPY', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert "heatmap" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "NO-NUMPY", done.stderr
