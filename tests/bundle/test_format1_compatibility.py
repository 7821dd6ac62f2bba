"""Bundles of format 1, as an earlier qex-archive wrote them, are read forever: verified,
imported, and packed again to the same bytes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa

OLD = Path(__file__).parents[1] / "data" / "format1-qex-0.1.0.qexb"


def test_a_bundle_from_an_earlier_version_imports_and_packs_again_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = qa.read_bundle(OLD)
    # it was packed with SOURCE_DATE_EPOCH set: pack again at the same moment
    created = datetime.fromisoformat(contents.description["created"].replace("Z", "+00:00"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(created.timestamp())))
    assert contents.description["format_version"] == 1 and len(contents.runs) == 3
    with qa.open_archive(tmp_path / "a") as arch:
        report = qa.import_bundle(arch, OLD)
        assert len(report.imported) == 3
        qutrit = arch.runs(experiment="qutrit")[0]
        np.testing.assert_allclose(qutrit.rho, np.eye(3) / 3)
        assert qutrit.provenance is not None
        assert qutrit.provenance["bundle_note"] == contents.description["note"]
        again = tmp_path / "again.qexb"
        qa.pack_bundle(arch, again, note=contents.description["note"])
    assert again.read_bytes() == OLD.read_bytes()
