"""Recording runs and reading them back."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from unittest.mock import Mock

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.store.files import sha256_of_file

from ..conftest import bell_state, random_density_matrix, snapshot


def test_round_trip_keeps_every_field_and_the_exact_bits(archive: qa.Archive) -> None:
    rng = np.random.default_rng(1)
    rho = random_density_matrix(4, rng)
    run = archive.record(
        "ghz_fidelity",
        params={"shots": 1024, "theta": 0.3, "tags": ["a", "b"], "nested": {"x": None}},
        backend="aer_simulator",
        state=rho,
        metadata={"operator": "ada"},
        timestamp=1764000000.25,
    )
    back = archive.get(run.run_id)
    assert back == run
    assert back.experiment_name == "ghz_fidelity"
    assert back.params == {"shots": 1024, "theta": 0.3, "tags": ["a", "b"], "nested": {"x": None}}
    assert back.backend_name == "aer_simulator"
    assert back.timestamp == 1764000000.25
    assert back.metadata is not None and back.metadata["operator"] == "ada"
    assert back.rho.dtype == np.complex128 and back.rho.flags.c_contiguous
    assert back.rho.tobytes() == rho.astype(np.complex128).tobytes()
    assert not back.rho.flags.writeable  # read into memory (small), never writable
    big = archive.record("big", backend="b", state=np.eye(256) / 256, renderers=[])
    assert isinstance(archive.get(big.run_id).rho, np.memmap)  # a MiB or more: mapped
    assert back.dims == [2, 2]
    assert str(run.run_id) == str(__import__("uuid").UUID(run.run_id, version=4))


def test_paths_in_the_database_are_relative(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=np.eye(2) / 2)
    stored = archive.conn.execute(
        "SELECT density_matrix_path FROM runs WHERE run_id = ?", (run.run_id,)
    ).fetchone()[0]
    assert stored == f"results/{run.run_id}_rho.npy"
    assert (archive.root / stored).is_file()
    paths = [p for (p,) in archive.conn.execute("SELECT path FROM qex_files ORDER BY path")]
    assert paths == [f"artifacts/{run.run_id}_bloch.html", stored]
    (artifact_path,) = archive.conn.execute("SELECT artifact_path FROM artifacts").fetchone()
    assert artifact_path == paths[0] and (archive.root / artifact_path).is_file()


def test_moving_the_archive_directory_keeps_it_working(tmp_path: Path) -> None:
    first = tmp_path / "here" / "qex_data"
    with qa.open_archive(first) as arch:
        run = arch.record("e", params={"k": 1}, backend="b", state=bell_state())
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(str(first), str(moved))
    with qa.open_archive(moved, create=False) as arch:
        back = arch.get(run.run_id)
        assert back.rho_path.parent.parent == moved
        np.testing.assert_array_equal(back.rho, bell_state())
        from qex_archive.store.integrity import check_archive

        assert check_archive(arch) == []


def test_stored_checksum_matches_the_file(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=bell_state())
    size, sha = sha256_of_file(run.rho_path)
    assert archive.conn.execute(
        "SELECT size, sha256 FROM qex_files WHERE path = ?", (run.density_matrix_path,)
    ).fetchone() == (size, sha)
    assert run.state_info["sha256"] == sha


def test_the_file_is_a_standard_npy(archive: qa.Archive) -> None:
    rho = bell_state()
    run = archive.record("e", backend="b", state=rho)
    np.testing.assert_array_equal(np.load(run.rho_path, allow_pickle=False), rho)


def test_validation_summary_of_known_states(archive: qa.Archive) -> None:
    bell = archive.record("e", backend="b", state=bell_state()).validation
    assert bell["is_valid"] and bell["findings"] == []
    assert bell["purity"] == pytest.approx(1)
    assert bell["von_neumann_entropy_bits"] == pytest.approx(0, abs=1e-12)
    mixed = archive.record("e", backend="b", state=np.eye(8) / 8).validation
    assert mixed["purity"] == pytest.approx(1 / 8)
    assert mixed["von_neumann_entropy_bits"] == pytest.approx(3)
    assert mixed["min_eigenvalue"] == pytest.approx(1 / 8) == mixed["max_eigenvalue"]
    assert set(mixed["tolerances"]) == {"trace", "hermiticity", "eigenvalue"}


def test_non_physical_states_are_stored_flagged_and_not_fixed(archive: qa.Archive) -> None:
    raw = np.array([[1.1, 0.0], [0.0, -0.1]])  # trace 1, negative eigenvalue
    run = archive.record("tomo", backend="b", state=raw)
    assert run.validation["is_valid"] is False
    assert any("positive semidefinite" in f for f in run.validation["findings"])
    np.testing.assert_array_equal(archive.get(run.run_id).rho, raw)
    not_hermitian = archive.record("tomo", backend="b", state=[[0.5, 0.2], [0.0, 0.5]])
    assert any("Hermitian" in f for f in not_hermitian.validation["findings"])
    bad_trace = archive.record("tomo", backend="b", state=np.eye(2))
    assert any("trace is 2" in f for f in bad_trace.validation["findings"])


def test_strict_refuses_a_non_physical_state(archive: qa.Archive) -> None:
    with pytest.raises(qa.InvalidState, match=r"not physical.*strict=False"):
        archive.record("tomo", backend="b", state=[[1.1, 0], [0, -0.1]], strict=True)
    assert archive.count() == 0
    assert archive.record("tomo", backend="b", state=np.eye(2) / 2, strict=True)


def test_state_vectors_are_stored_as_pure_states(archive: qa.Archive) -> None:
    psi = np.array([1, 1j]) / np.sqrt(2)
    run = archive.record("e", backend="b", state=psi)
    np.testing.assert_allclose(run.rho, np.outer(psi, psi.conj()))
    assert run.state_info["source_kind"] == "state_vector"


def test_lists_and_real_arrays_become_complex128(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=[[1, 0], [0, 0]])
    assert run.rho.dtype == np.complex128
    fortran = np.asfortranarray(bell_state())
    run2 = archive.record("e", backend="b", state=fortran)
    assert run2.rho.flags.c_contiguous
    np.testing.assert_array_equal(run2.rho, bell_state())


def test_qudit_dims_are_explicit(archive: qa.Archive) -> None:
    run = archive.record("qutrits", backend="b", state=np.eye(9) / 9, dims=[3, 3])
    assert run.dims == [3, 3]
    assert archive.record("e", backend="b", state=np.eye(6) / 6, dims=(2, 3)).dims == [2, 3]
    assert archive.record("e", backend="b", state=np.eye(8) / 8).dims == [2, 2, 2]


def test_metadata_records_state_layout_and_version(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=bell_state())
    meta = run.metadata
    assert meta is not None
    assert meta["state"]["ordering"] == "big_endian"
    assert meta["state"]["subsystem_labels"] == [0, 1]
    assert meta["state"]["shape"] == [4, 4]
    assert meta["qex"]["version"] == qa.__version__
    stored = archive.conn.execute("SELECT metadata FROM runs").fetchone()[0]
    assert json.loads(stored) == meta


def test_params_from_numpy_are_plain_json(archive: qa.Archive) -> None:
    run = archive.record(
        "e",
        params={"n": np.int64(3), "x": np.float32(0.5), "v": np.arange(3), "t": (1, 2)},
        backend="b",
        state=bell_state(),
    )
    assert archive.get(run.run_id).params == {"n": 3, "x": 0.5, "v": [0, 1, 2], "t": [1, 2]}


def test_timestamps_accept_datetimes_and_iso_text(archive: qa.Archive) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert (
        archive.record("e", backend="b", state=bell_state(), timestamp=when).timestamp
        == when.timestamp()
    )
    run = archive.record("e", backend="b", state=bell_state(), timestamp="2026-01-02T03:04:05Z")
    assert run.timestamp == when.timestamp()


def test_batch_commits_all_at_once(archive: qa.Archive) -> None:
    with archive.batch():
        for i in range(5):
            archive.record("e", params={"i": i}, backend="b", state=bell_state())
    assert archive.count() == 5


def test_a_failed_batch_leaves_nothing(archive: qa.Archive) -> None:
    before = archive.record("keep", backend="b", state=bell_state())
    with pytest.raises(RuntimeError), archive.batch():
        for i in range(3):
            archive.record("e", params={"i": i}, backend="b", state=bell_state())
        raise RuntimeError("interrupted")
    assert [r.run_id for r in archive.runs()] == [before.run_id]
    assert sorted(p.name for p in archive.results_dir.iterdir()) == [f"{before.run_id}_rho.npy"]


def test_a_record_that_fails_inside_a_batch_leaves_the_batch_as_it_was(
    archive: qa.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qex_archive.store.integrity import check_archive

    with archive.batch():
        first = archive.record("e", params={"i": 0}, backend="b", state=bell_state())
        with monkeypatch.context() as patched:
            # fails after the run's row and files are written
            patched.setattr(archive, "_insert_artifacts", Mock(side_effect=OSError(28, "full")))
            with pytest.raises(qa.ArchiveError, match="cannot record the run: the disk is full"):
                archive.record("e", params={"i": 1}, backend="b", state=bell_state())
        with pytest.raises(qa.InvalidState):  # refused after its matrix was written
            archive.record("e", backend="b", state=np.diag([1.5, -0.5]), strict=True)
        last = archive.record("e", params={"i": 2}, backend="b", state=bell_state())
    assert [r.run_id for r in archive.runs()] == [last.run_id, first.run_id]
    assert check_archive(archive) == []
    assert len(list(archive.results_dir.iterdir())) == 2
    assert len(list(archive.artifacts_dir.iterdir())) == 2


def test_a_refused_record_leaves_the_archive_as_it_was(archive: qa.Archive) -> None:
    archive.record("keep", backend="b", state=bell_state())
    before = snapshot(archive.root)
    with pytest.raises(qa.InvalidState, match="not physical"):
        archive.record("e", backend="b", state=np.diag([1.5, -0.5]), strict=True)
    assert snapshot(archive.root) == before


def test_delete_removes_row_and_files(archive: qa.Archive) -> None:
    keep = archive.record("e", backend="b", state=bell_state())
    gone = archive.record("e", backend="b", state=bell_state())
    (artifact,) = archive.get(gone.run_id).artifacts
    assert artifact.name == "bloch" and artifact.path.is_file()
    archive.delete(gone.run_id[:10])
    with pytest.raises(qa.RunNotFound):
        archive.get(gone.run_id)
    assert not gone.rho_path.exists() and not artifact.path.exists()
    assert [p.name for p in archive.artifacts_dir.iterdir()] == [f"{keep.run_id}_bloch.html"]
    for table in ("runs", "artifacts", "qex_files"):
        rows = archive.conn.execute(
            f"SELECT count(*) FROM {table} WHERE run_id = ?", (gone.run_id,)
        )
        assert rows.fetchone()[0] == 0, table
    assert archive.get(keep.run_id).rho_path.exists()


def test_deleting_inside_a_batch_removes_files_only_when_it_commits(archive: qa.Archive) -> None:
    runs = [archive.record("e", backend="b", state=bell_state()) for _ in range(3)]
    with pytest.raises(RuntimeError), archive.batch():
        archive.delete(runs[0].run_id)
        raise RuntimeError("changed my mind")
    assert archive.get(runs[0].run_id).rho_path.exists()
    with archive.batch():
        archive.delete(runs[0].run_id)
        archive.delete(runs[1].run_id)
        assert runs[0].rho_path.exists()  # not yet: the batch has not committed
    assert not runs[0].rho_path.exists() and not runs[1].rho_path.exists()
    assert [r.run_id for r in archive.runs()] == [runs[2].run_id]
    from qex_archive.store.integrity import check_archive

    assert check_archive(archive) == []


def test_open_without_create_refuses_a_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(qa.ArchiveNotFound) as caught:
        qa.open_archive(tmp_path / "nothing", create=False)
    assert f"'qex-archive --data-dir {tmp_path / 'nothing'} init'" in str(caught.value)
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(qa.ArchiveNotFound, match="create one with 'qex-archive init'"):
        qa.open_archive(create=False)  # the default place needs no option


def test_location_comes_from_argument_then_env_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert qa.resolve_data_dir(None) == Path("qex_data")
    monkeypatch.setenv("QEX_DATA", str(tmp_path / "env"))
    assert qa.resolve_data_dir(None) == tmp_path / "env"
    assert qa.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    with qa.open_archive() as arch:
        assert arch.root == tmp_path / "env"
        assert (tmp_path / "env" / "qex.db").is_file()
        assert (tmp_path / "env" / "results").is_dir() and (tmp_path / "env" / "artifacts").is_dir()


def test_validation_sums_blocks_of_rows_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    from qex_archive.physics import validation as physics

    rng = np.random.default_rng(5)
    rho = rng.normal(size=(37, 37)) + 1j * rng.normal(size=(37, 37))
    whole = physics.validation_summary(rho)
    monkeypatch.setattr(physics, "_BLOCK_ELEMENTS", 37 * 5)  # blocks of 5 rows, the last of 2
    blocked = physics.validation_summary(rho)
    assert blocked["purity"] == pytest.approx(float(np.real(np.sum(rho * rho.T))), rel=1e-12)
    assert blocked["max_hermitian_deviation"] == float(np.max(np.abs(rho - rho.conj().T)))
    assert blocked["purity"] == pytest.approx(whole["purity"], rel=1e-12)
    assert blocked["findings"] == whole["findings"]


def test_large_states_skip_the_spectrum_and_say_so(
    archive: qa.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qex_archive.physics import validation as physics

    monkeypatch.setattr(physics, "SPECTRUM_MAX_DIM", 4)
    run = archive.record("big", backend="b", state=np.eye(8) / 8)
    assert run.validation["is_valid"] and run.validation["purity"] == pytest.approx(1 / 8)
    assert run.validation["von_neumann_entropy_bits"] is None
    assert run.validation["spectrum"].startswith("not computed above dimension 4")
    bad = np.diag([1.2, -0.2, 0, 0, 0, 0, 0, 0]).astype(complex)
    flagged = archive.record("big", backend="b", state=bad)
    assert flagged.validation["findings"] == ["not positive semidefinite: diagonal entry -0.2"]
    monkeypatch.setenv(physics.SPECTRUM_ENV, "full")
    full = archive.record("big", backend="b", state=np.eye(8) / 8)
    assert full.validation["spectrum"] == "full"
    assert full.validation["von_neumann_entropy_bits"] == pytest.approx(3.0)
    from qex_archive.views.text import run_details

    assert "entropy ? bits" in run_details(run)  # shown as unknown, not as a crash
