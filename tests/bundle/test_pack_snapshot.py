"""Pack reads one snapshot: a render committed from another connection while pack runs
(between its batches of runs) neither fails the pack nor mixes old rows with new files."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import qex_archive as qa
from qex_archive.bundle import pack_bundle, read_bundle, records
from qex_archive.store.integrity import check_archive

from ..conftest import bell_state


def _stale_page(arch: qa.Archive, run: Any) -> None:
    """Give the run a page other than the one render makes (one an older renderer made, say),
    recorded as it is: the archive is consistent, ``check`` finds nothing."""
    (page,) = [a for a in run.artifacts if a.name == "bloch"]
    stale = page.path.read_bytes().replace(b"</body>", b"<p>older</p></body>")
    page.path.write_bytes(stale)
    arch.conn.execute(
        "UPDATE qex_files SET size = ?, sha256 = ? WHERE path = ?",
        (len(stale), hashlib.sha256(stale).hexdigest(), page.relative_path),
    )


def test_a_render_committed_between_packs_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "qex_data"
    with qa.open_archive(root) as arch:
        runs = [
            arch.record("e", params={"i": i}, backend="b", state=bell_state()) for i in range(3)
        ]
        for run in runs:
            _stale_page(arch, run)
        assert check_archive(arch) == []

    batches = records.runs_in_batches
    rendered = []

    def between(archive: qa.Archive, run_ids: Sequence[str]) -> Iterator[list[Any]]:
        for i, batch in enumerate(batches(archive, run_ids)):
            yield batch
            if i == 0 and not rendered:  # once: another process renders the run just read
                (run,) = batch  # (its page is read after the last batch) and commits
                with qa.open_archive(root, create=False) as other:
                    other.render(run.run_id)
                rendered.append(run.run_id)

    monkeypatch.setattr(records, "BATCH", 1)
    monkeypatch.setattr(records, "runs_in_batches", between)
    with qa.open_archive(root, create=False) as arch:
        pack_bundle(arch, tmp_path / "b.qexb")  # failed with "... differs ...; run check"
        assert rendered and check_archive(arch) == []
        (target,) = rendered
        new_page = (root / f"artifacts/{target}_bloch.html").read_bytes()
    contents = read_bundle(tmp_path / "b.qexb")  # rows and files agree
    assert len(contents.runs) == 3
    with zipfile.ZipFile(tmp_path / "b.qexb") as bundle:
        assert bundle.read(f"data/artifacts/{target}_bloch.html") == new_page
        described = json.loads(bundle.read("data/qex-bundle.json"))
    (record,) = [r for r in described["runs"] if r["run_id"] == target]
    (page,) = record["artifacts"]
    assert page["sha256"] == hashlib.sha256(new_page).hexdigest()


def test_a_file_damaged_for_good_still_stops_the_pack(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "qex_data") as arch:
        run = arch.record("e", backend="b", state=bell_state())
        (page,) = [a for a in run.artifacts if a.name == "bloch"]
        page.path.write_bytes(b"<html>changed behind qex's back</html>")
        with pytest.raises(qa.ArchiveError, match="differs from its recorded checksum"):
            pack_bundle(arch, tmp_path / "b.qexb")
        assert not (tmp_path / "b.qexb").exists()
