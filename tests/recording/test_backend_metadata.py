"""Backend metadata gathered while a run is recorded: an attribute that raises is noted in the
run's plugin errors and warned about, not hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

import qex_archive as qa
from qex_archive.plugins import make_plugin_manager

from ..conftest import bell_state


def test_a_failing_backend_attribute_is_noted_not_hidden(data_dir: Path) -> None:
    pytest.importorskip("qex_qiskit")
    import qex_qiskit
    from qiskit.providers.fake_provider import GenericBackendV2

    class Flaky(GenericBackendV2):  # type: ignore[misc]
        @property
        def dt(self) -> float:
            raise RuntimeError("calibration service unreachable")

    plugins = make_plugin_manager(extra_plugins=[qex_qiskit])
    with (
        qa.open_archive(data_dir, plugins=plugins) as arch,
        pytest.warns(qa.PluginWarning, match="calibration service unreachable"),
    ):
        run = arch.record("e", backend=Flaky(num_qubits=2, seed=1), state=bell_state())
    assert run.metadata is not None
    info = run.metadata["backend"]["qiskit"]
    assert info["dt_s"] is None and "qex_errors" not in info and info["num_qubits"] == 2
    (error,) = run.metadata["qex"]["plugin_errors"]
    assert (
        error["hook"] == "qex_backend_metadata"
        and "backend.dt raised RuntimeError" in (error["error"])
    )
