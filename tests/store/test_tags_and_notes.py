"""Tags and notes: stored beside the seed tables, filtered on, shown, and carried by bundles
(format 2) with a merge on import that never overwrites."""

from __future__ import annotations

import json
import re
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle, read_bundle
from qex_archive.cli import cli

from ..conftest import bell_state, snapshot


def invoke(data_dir: Path, *args: str) -> object:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])


def test_tags_and_notes_from_python(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=bell_state())
    run.set_tag("calibration")
    run.set_tag("figure", "3")
    assert run.tags == {"calibration": "", "figure": "3"}
    run.set_tag("figure", "4")
    run.remove_tag("calibration")
    assert run.tags == {"figure": "4"}
    run.add_note("fridge warmed up")
    run.add_note("second thoughts")
    run.add_note("fridge warmed up at 14:02", edit=True)
    assert [n["text"] for n in run.notes] == ["fridge warmed up", "fridge warmed up at 14:02"]
    other = archive.record("e", backend="b", state=np.eye(4) / 4)
    assert archive.runs(tags={"figure": "4"}) == [run]
    assert archive.runs(tags={"figure": None}) == [run]
    assert archive.runs(tags={"figure": "3"}) == []
    assert {r.run_id for r in archive.runs()} == {run.run_id, other.run_id}
    for bad in ("", " x", "a=b", "x\x1b"):
        with pytest.raises(qa.InvalidInput):
            run.set_tag(bad)
    with pytest.raises(qa.InvalidInput, match="no note to edit"):
        other.add_note("x", edit=True)


@pytest.mark.parametrize("index_max", [0, 3, 10**9], ids=["each run", "mixed", "the index"])
def test_a_tag_read_from_the_index_or_asked_of_each_run_selects_the_same_runs(
    archive: qa.Archive, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, index_max: int
) -> None:
    from qex_archive.export import export_runs
    from qex_archive.store import annotation_tables
    from qex_archive.store.annotations import tag_runs

    with archive.batch():
        runs = [
            archive.record(f"e{i % 2}", params={"i": i}, backend="b", state=np.eye(2) / 2)
            for i in range(12)
        ]
    tag_runs(archive, [r.run_id for r in runs[:2]], {"figure": "3"})  # rare
    tag_runs(archive, [r.run_id for r in runs[::2]], {"sweep": "a"})  # common (6 runs)
    tag_runs(archive, [r.run_id for r in runs[1::3]], {"sweep": "b"})
    monkeypatch.setattr(annotation_tables, "TAG_INDEX_MAX", index_max)
    rare = annotation_tables.rare_tags(
        archive.conn, [("figure", "3"), ("sweep", None), ("sweep", "a")]
    )
    assert (
        rare
        == {
            0: set(),
            3: {("figure", "3")},
            10**9: {("figure", "3"), ("sweep", None), ("sweep", "a")},
        }[index_max]
    )

    def expected(*tags: tuple[str, str | None]) -> list[str]:
        marks = {r.run_id: r.tags for r in runs}
        chosen = [
            r
            for r in runs
            if all(k in marks[r.run_id] and v in (None, marks[r.run_id][k]) for k, v in tags)
        ]
        return [r.run_id for r in sorted(chosen, key=lambda r: r.timestamp, reverse=True)]

    for tags in ({"figure": "3"}, {"sweep": None}, {"sweep": "a", "figure": None}, {"x": None}):
        want = expected(*tags.items())
        assert [r.run_id for r in archive.runs(tags=tags)] == want
        assert [r.run_id for r in archive.runs(tags=tags, limit=1)] == want[:1]
        assert archive.count(qa.RunFilter.build(tags=tags)) == len(want)
        assert archive.run_ids(qa.RunFilter.build(tags=tags)) == sorted(want)
    even = {r.run_id for r in runs[::2]}  # experiment e0
    assert [r.run_id for r in archive.runs(experiment="e0", tags={"sweep": "a"})] == [
        run_id for run_id in expected(("sweep", "a")) if run_id in even
    ]
    exported = export_runs(archive, qa.RunFilter.build(tags={"sweep": "b"}), tmp_path / "s.csv")
    assert exported.runs == len(expected(("sweep", "b"))) == 4


def test_the_seed_tables_are_untouched_and_rm_removes_the_marks(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=bell_state())
    run.set_tag("t")
    run.add_note("n")
    columns = [row[1] for row in archive.conn.execute("PRAGMA table_info(runs)")]
    assert columns == [
        "run_id", "experiment_name", "params", "backend_name", "timestamp",
        "density_matrix_path", "metadata",
    ]  # fmt: skip
    archive.delete(run.run_id)
    assert archive.conn.execute("SELECT count(*) FROM qex_tags").fetchone()[0] == 0
    assert archive.conn.execute("SELECT count(*) FROM qex_notes").fetchone()[0] == 0


def test_the_commands(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        arch.record("e", backend="b", state=np.eye(4) / 4)
    short = run.run_id[:8]
    result = invoke(data_dir, "tag", short, "calibration=", "figure=3")
    assert result.exit_code == 0 and "calibration figure=3" in result.output  # type: ignore[attr-defined]
    assert invoke(data_dir, "note", short, "used in figure 3").exit_code == 0  # type: ignore[attr-defined]
    listed = invoke(data_dir, "runs", "-t", "figure=3").output  # type: ignore[attr-defined]
    assert "TAGS" in listed and short in listed and len(listed.strip().splitlines()) == 2
    shown = invoke(data_dir, "show", short).output  # type: ignore[attr-defined]
    assert "calibration figure=3" in shown and "used in figure 3" in shown
    data = json.loads(invoke(data_dir, "show", "--json", short).output)  # type: ignore[attr-defined]
    assert data["tags"] == {"calibration": "", "figure": "3"}
    assert data["notes"][0]["text"] == "used in figure 3"
    assert invoke(data_dir, "tag", short, "--remove", "figure").exit_code == 0  # type: ignore[attr-defined]
    no_runs = invoke(data_dir, "tag", "figure=3")
    assert no_runs.exit_code == 1 and "name at least one run" in no_runs.output  # type: ignore[attr-defined]


def test_bundles_without_marks_stay_format_1_and_with_them_are_format_2(
    data_dir: Path, tmp_path: Path
) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        pack_bundle(arch, tmp_path / "plain.qexb")
        run.set_tag("figure", "3")
        run.add_note("kept for the paper")
        notes = run.notes
        pack_bundle(arch, tmp_path / "marked.qexb", note="for Ada")
    assert read_bundle(tmp_path / "plain.qexb").description["format_version"] == 1
    marked = read_bundle(tmp_path / "marked.qexb")
    assert marked.description["format_version"] == 2
    assert marked.bag_info["QEX-Bundle-Version"] == "2"
    (record,) = marked.runs
    assert record["tags"] == {"figure": "3"} and record["notes"][0]["text"] == "kept for the paper"
    with qa.open_archive(tmp_path / "ada") as ada:
        report = import_bundle(ada, tmp_path / "marked.qexb")
        imported = ada.get(run.run_id)
        assert imported.tags == {"figure": "3"} and imported.notes == notes
        assert imported.provenance is not None
        assert imported.provenance["bundle_note"] == "for Ada"
        assert report.imported == [run.run_id]
        pack_bundle(ada, tmp_path / "again.qexb")  # packing an imported run gives the same bytes
    with (
        zipfile.ZipFile(tmp_path / "again.qexb") as again,
        zipfile.ZipFile(tmp_path / "marked.qexb") as first,
    ):
        assert again.read("data/qex-bundle.json").replace(b"for Ada", b"") != b""
        assert (
            json.loads(again.read("data/qex-bundle.json"))["runs"]
            == json.loads(first.read("data/qex-bundle.json"))["runs"]
        )
    shown = invoke(tmp_path / "ada", "show", run.run_id[:8]).output  # type: ignore[attr-defined]
    assert "bundle note  for Ada" in shown


def test_import_merges_marks_and_never_overwrites(data_dir: Path, tmp_path: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        pack_bundle(arch, tmp_path / "plain.qexb")
        run.set_tag("figure", "3")
        run.set_tag("reviewed", "yes")
        run.add_note("theirs")
        pack_bundle(arch, tmp_path / "marked.qexb")
    with qa.open_archive(tmp_path / "ada") as ada:
        import_bundle(ada, tmp_path / "plain.qexb")
        mine = ada.get(run.run_id)
        mine.set_tag("figure", "5")
        mine.add_note("mine")
        report = import_bundle(ada, tmp_path / "marked.qexb")
        assert report.imported == [] and report.identical == [run.run_id]
        assert report.tags_added == [(run.run_id, "reviewed", "yes")]
        assert report.tag_conflicts == [(run.run_id, "figure", "5", "3")]
        assert [n["text"] for n in mine.notes] == ["theirs", "mine"]  # by time written
        assert mine.tags == {"figure": "5", "reviewed": "yes"}
        before = snapshot(ada.root)
        again = import_bundle(ada, tmp_path / "marked.qexb")  # nothing changes the second time
        assert again.tags_added == [] and again.notes_added == []
        assert snapshot(ada.root) == before
    cli_report = invoke(tmp_path / "ada", "import", str(tmp_path / "marked.qexb"))
    assert "kept tag figure='5'" in cli_report.output  # type: ignore[attr-defined]
    assert "nothing changed" in cli_report.output  # type: ignore[attr-defined]


def test_format_rules(data_dir: Path, tmp_path: Path) -> None:
    from ..bundle_tools import read_members, rebag, write_zip

    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        run.set_tag("figure", "3")
        pack_bundle(arch, tmp_path / "v2.qexb")
    members = read_members(tmp_path / "v2.qexb")

    def variant(name: str, version: str, change: object) -> Path:
        value = json.loads(members["data/qex-bundle.json"])
        change(value)  # type: ignore[operator]
        edited = {**members, "data/qex-bundle.json": json.dumps(value).encode()}
        info = edited["bag-info.txt"].decode().replace("QEX-Bundle-Version: 2", version)
        return write_zip(tmp_path / name, rebag({**edited, "bag-info.txt": info.encode()}))

    newer = variant("v3.qexb", "QEX-Bundle-Version: 3", lambda v: v.update(format_version=3))
    with pytest.raises(qa.BundleError, match=r"QEX-B024.*upgrade") as caught:
        read_bundle(newer)
    assert caught.value.code == "QEX-B024"
    v1_with_tags = variant("v1.qexb", "QEX-Bundle-Version: 1", lambda v: v.update(format_version=1))
    with pytest.raises(qa.BundleError, match="format 1 has not"):
        read_bundle(v1_with_tags)
    bad_tag = variant(
        "bad.qexb", "QEX-Bundle-Version: 2", lambda v: v["runs"][0]["tags"].update({"a=b": "x"})
    )
    with pytest.raises(qa.BundleError, match="QEX-B023"):
        read_bundle(bad_tag)
    assert sqlite3.sqlite_version  # the merge SQL uses ON CONFLICT (SQLite 3.24+)


def test_a_bundle_can_carry_the_report_of_its_runs(data_dir: Path, tmp_path: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        for p in (0.0, 0.2):
            arch.record(
                "e", params={"p": p}, backend="b", state=(1 - p) * bell_state() + p / 4 * np.eye(4)
            )
    result = invoke(data_dir, "pack", "-o", str(tmp_path / "r.qexb"), "--with-report")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    contents = read_bundle(tmp_path / "r.qexb")
    assert contents.description["format_version"] == 2
    assert contents.description["report"]["path"] == "data/report.html"
    with zipfile.ZipFile(tmp_path / "r.qexb") as bundle:
        page = bundle.read("data/report.html").decode()
        names = set(bundle.namelist())
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert len(hrefs) == 2 and all(f"data/{href}" in names for href in hrefs)
    shown = invoke(data_dir, "inspect", str(tmp_path / "r.qexb")).output  # type: ignore[attr-defined]
    assert "report       data/report.html" in shown
    with qa.open_archive(tmp_path / "ada") as ada:
        assert len(import_bundle(ada, tmp_path / "r.qexb").imported) == 2
        assert not (ada.root / ".staging").exists()
    from ..bundle_tools import read_members, rebag, write_zip

    members = read_members(tmp_path / "r.qexb")
    tampered = {**members, "data/report.html": b"<html>something else</html>"}
    with pytest.raises(qa.BundleError) as caught:
        read_bundle(write_zip(tmp_path / "t.qexb", rebag(tampered)))
    assert caught.value.code == "QEX-B023"
