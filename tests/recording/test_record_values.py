"""record accepts only values every later command can handle: states that would overflow,
timestamps no command can show, metadata nested too deep and .npy headers that lie are
refused, in one line, before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa

from ..cli_tools import invoke, one_line_error
from ..conftest import bell_state


def test_record_normalises_state_vectors_without_overflow(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=np.array([1e200, 0]))
    np.testing.assert_array_equal(run.rho, np.diag([1, 0]).astype(complex))
    assert run.state_info["source_norm"] == 1e200 and run.validation["is_valid"]
    tiny = archive.record("e", backend="b", state=np.array([3e-200, 4e-200j]))
    assert tiny.validation["is_valid"] and abs(tiny.rho[1, 1] - 0.64) < 1e-12
    with pytest.raises(qa.InvalidState, match="zero"):
        archive.record("e", backend="b", state=[0, 0])


def test_record_refuses_what_overflows_complex128(archive: qa.Archive) -> None:
    huge = np.array([[np.longdouble("1e400"), 0], [0, 0]])
    if not np.isfinite(huge).all():
        pytest.skip("this platform's long double is a double")
    with pytest.raises(qa.InvalidState, match="too large for complex128"):
        archive.record("e", backend="b", state=huge)
    assert archive.count() == 0


@pytest.mark.parametrize("when", [1e300, -1e300, -3e9, 2.6e11, "9999999-01-01"])
def test_record_refuses_timestamps_no_command_can_show(archive: qa.Archive, when: object) -> None:
    with pytest.raises(qa.InvalidInput, match="timestamp"):
        archive.record("e", backend="b", state=bell_state(), timestamp=when)
    assert archive.count() == 0


def test_deep_metadata_and_lying_npy_headers_are_refused(data_dir: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", np.eye(2) / 2)
    deep = "[" * 5000 + "]" * 5000
    one_line_error(
        invoke(data_dir, "record", str(tmp_path / "s.npy"), "-e", "x", "-b", "b", "-m", deep),
        "nested deeper",
    )
    header = "{'descr': '<c16', 'fortran_order': False, 'shape': (100000, 100000), }"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    liar = tmp_path / "liar.npy"
    liar.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    one_line_error(
        invoke(data_dir, "record", str(liar), "-e", "x", "-b", "b"), "the header promises"
    )
