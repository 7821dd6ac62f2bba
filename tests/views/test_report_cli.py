"""The report command's target state: fidelity to a .npy file, refused in one line when the
file is not a state."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import qex_archive as qa

from ..cli_tools import invoke, one_line_error
from ..conftest import bell_state


def test_report_plots_fidelity_to_a_target_state_file(data_dir: Path, tmp_path: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        for p in (0.0, 0.2, 0.4):
            state = (1 - p) * bell_state() + p * np.eye(4) / 4
            arch.record("bell", params={"p": p}, backend="b", state=state)
    np.save(tmp_path / "target.npy", bell_state())
    page = tmp_path / "report.html"
    result = invoke(
        data_dir, "report", "-o", str(page), "--ref-state", str(tmp_path / "target.npy")
    )
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "fidelity to target.npy" in text
    (tmp_path / "pickled.npy").write_bytes(b"\x93NUMPY\x01\x00" + b"x" * 40)
    one_line_error(
        invoke(data_dir, "report", "-o", str(page), "--ref-state", str(tmp_path / "pickled.npy"))
    )
