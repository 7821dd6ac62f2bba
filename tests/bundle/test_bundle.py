"""Packing, verifying, importing and unpacking bundles: the honest path."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive import unpack_bundle
from qex_archive.bundle import BundleError, import_bundle, pack_bundle, read_bundle
from qex_archive.bundle.format import schema_path
from qex_archive.cli import cli
from qex_archive.demo import fill_demo_archive
from qex_archive.store.integrity import check_archive

from ..conftest import bell_state, snapshot


@pytest.fixture
def source(tmp_path: Path) -> qa.Archive:
    arch = qa.open_archive(tmp_path / "source")
    fill_demo_archive(arch)
    return arch


def rows(arch: qa.Archive) -> dict[str, tuple[object, ...]]:
    result = {}
    for run in arch.runs(limit=None):
        artifacts = tuple((a.name, a.media_type, a.path.read_bytes()) for a in run.artifacts)
        result[run.run_id] = (
            run.experiment_name,
            run.params,
            run.backend_name,
            run.timestamp,
            run.metadata,
            run.rho_path.read_bytes(),
            artifacts,
        )
    return result


def test_round_trip_through_unpack_and_import(source: qa.Archive, tmp_path: Path) -> None:
    bundle = tmp_path / "all.qexb"
    report = pack_bundle(source, bundle)
    assert report.runs == 41 and report.files == 41 * 2 + 2
    unpack_bundle(bundle, tmp_path / "unpacked")
    second = qa.open_archive(tmp_path / "second")
    second.record("local", backend="b", state=bell_state())
    imported = import_bundle(second, bundle)
    assert len(imported.imported) == 41
    with qa.open_archive(tmp_path / "unpacked") as unpacked:
        assert rows(unpacked) == rows(source)
        assert check_archive(unpacked) == [f for f in check_archive(source)]
        pack_bundle(unpacked, tmp_path / "again-1.qexb")
    assert {k: v for k, v in rows(second).items() if k in rows(source)} == rows(source)
    pack_bundle(
        second,
        tmp_path / "again-2.qexb",
        selection=qa.RunFilter(experiment=None),
        runs=list(rows(source)),
    )
    assert (tmp_path / "again-1.qexb").read_bytes() == bundle.read_bytes()
    assert (tmp_path / "again-2.qexb").read_bytes() == bundle.read_bytes()


def test_packing_is_deterministic_across_time(
    source: qa.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack_bundle(source, tmp_path / "a.qexb", selection=qa.RunFilter(experiment="rabi_sweep"))
    import time

    time.sleep(1.1)
    pack_bundle(source, tmp_path / "b.qexb", selection=qa.RunFilter(experiment="rabi_sweep"))
    assert (tmp_path / "a.qexb").read_bytes() == (tmp_path / "b.qexb").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    pack_bundle(source, tmp_path / "c.qexb", selection=qa.RunFilter(experiment="rabi_sweep"))
    assert read_bundle(tmp_path / "c.qexb").description["created"] == "2023-11-14T22:13:20Z"
    with zipfile.ZipFile(tmp_path / "a.qexb") as bundle:
        names = [info.filename for info in bundle.infolist()]
        assert names == sorted(names)
        for info in bundle.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            expected = (
                zipfile.ZIP_STORED if info.filename.endswith(".npy") else zipfile.ZIP_DEFLATED
            )
            assert info.compress_type == expected


def test_description_carries_everything(source: qa.Archive, tmp_path: Path) -> None:
    run = source.runs(experiment="ghz_depolarizing", limit=1)[0]
    pack_bundle(source, tmp_path / "one.qexb", runs=[run.run_id[:8]], note="for Ada")
    contents = read_bundle(tmp_path / "one.qexb")
    description = contents.description
    assert description["note"] == "for Ada" and description["creator"]["version"] == qa.__version__
    assert "runs" not in description  # the runs are read one by one, not kept
    (record,) = contents.runs
    assert record["run_id"] == run.run_id and record["params"] == run.params
    assert record["metadata"] == run.metadata and record["timestamp"] == run.timestamp
    assert record["density_matrix"]["shape"] == list(run.rho.shape)
    assert record["density_matrix"]["sha256"] == run.state_info["sha256"]
    stored = source.conn.execute(
        "SELECT sha256 FROM qex_files WHERE path = ?", (run.density_matrix_path,)
    )
    assert (
        stored.fetchone()[0]
        == record["density_matrix"]["sha256"]
        == contents.manifest[record["density_matrix"]["path"]]
    )
    assert contents.bag_info["External-Identifier"] == f"urn:uuid:{description['bundle_id']}"


def test_no_artifacts_and_empty_selection(source: qa.Archive, tmp_path: Path) -> None:
    report = pack_bundle(source, tmp_path / "bare.qexb", include_artifacts=False)
    assert report.files == 41 + 2
    with pytest.raises(qa.InvalidInput, match="no runs match; nothing to pack"):
        pack_bundle(source, tmp_path / "none.qexb", selection=qa.RunFilter(experiment="nope"))
    assert not (tmp_path / "none.qexb").exists()


PACK_KEYWORDS = {
    "--no-artifacts": {"include_artifacts": False},
    "--no-attachments": {"include_attachments": False},
}


@dataclass
class Packed:
    source: qa.Archive
    run: qa.Run  # in the source archive
    imported: qa.Run  # the same run imported from the bundle
    members: set[str]  # the bundle's artifact members
    payload_bytes: int  # what the bundle's data files add up to


def pack_and_import(tmp_path: Path, *flags: str) -> Packed:
    """A run with an attachment (``counts``) and rendered pages (its Bloch page among them),
    packed with ``flags`` on the command line (and by the library keywords, to the same
    bytes), verified, and imported into another archive."""
    source = qa.open_archive(tmp_path / "source")
    run = source.record(
        "e", backend="b", state=bell_state(), attach={"counts": {"00": 509, "11": 515}}
    )
    assert run.attachment_names == ["counts"] and "bloch" in {a.name for a in run.artifacts}
    bundle = tmp_path / "b.qexb"
    runner = CliRunner()
    packed = runner.invoke(cli, ["-d", str(source.root), "pack", "-o", str(bundle), *flags])
    assert packed.exit_code == 0, packed.output
    keywords: dict[str, bool] = {}
    for flag in flags:
        keywords.update(PACK_KEYWORDS[flag])
    pack_bundle(source, tmp_path / "library.qexb", **keywords)
    assert (tmp_path / "library.qexb").read_bytes() == bundle.read_bytes()
    verified = runner.invoke(cli, ["verify", str(bundle), "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["valid"] is True
    with zipfile.ZipFile(bundle) as archive:
        sizes = {i.filename: i.file_size for i in archive.infolist()}
    target = qa.open_archive(tmp_path / "target")
    import_bundle(target, bundle)
    imported = target.get(run.run_id)
    originals = {a.name: a.path.read_bytes() for a in run.artifacts}
    for artifact in imported.artifacts:
        assert artifact.path.read_bytes() == originals[artifact.name]
    assert imported.rho_path.read_bytes() == run.rho_path.read_bytes()
    return Packed(
        source,
        run,
        imported,
        {name for name in sizes if name.startswith("data/artifacts/")},
        sum(
            size
            for name, size in sizes.items()
            if name.startswith(("data/artifacts/", "data/results/"))
        ),
    )


def test_no_artifacts_keeps_the_attachments(tmp_path: Path) -> None:
    packed = pack_and_import(tmp_path, "--no-artifacts")
    run, imported = packed.run, packed.imported
    assert packed.members == {f"data/artifacts/{run.run_id}_counts.json"}
    assert [a.name for a in imported.artifacts] == ["counts"]
    assert imported.attachment("counts").read() == run.attachment("counts").read()


def test_no_attachments_keeps_the_rendered_artifacts(tmp_path: Path) -> None:
    packed = pack_and_import(tmp_path, "--no-attachments")
    run, imported = packed.run, packed.imported
    rendered = {a.name for a in run.artifacts} - {"counts"}
    assert f"data/artifacts/{run.run_id}_bloch.html" in packed.members
    assert f"data/artifacts/{run.run_id}_counts.json" not in packed.members
    assert {a.name for a in imported.artifacts} == rendered and "bloch" in rendered
    with pytest.raises(qa.InvalidInput, match="no attachment 'counts'"):
        imported.attachment("counts")


def test_no_artifacts_and_no_attachments_pack_the_density_matrices_alone(
    tmp_path: Path,
) -> None:
    packed = pack_and_import(tmp_path, "--no-artifacts", "--no-attachments")
    assert packed.members == set() and packed.imported.artifacts == []


@pytest.mark.parametrize(
    "flags",
    [(), ("--no-artifacts",), ("--no-attachments",), ("--no-artifacts", "--no-attachments")],
)
def test_the_progress_total_is_what_is_packed(tmp_path: Path, flags: tuple[str, ...]) -> None:
    from qex_archive.bundle.records import ArtifactKinds, known_payload_size

    packed = pack_and_import(tmp_path, *flags)
    kinds = ArtifactKinds(
        rendered="--no-artifacts" not in flags, attached="--no-attachments" not in flags
    )
    assert known_payload_size(packed.source, [packed.run.run_id], kinds) == packed.payload_bytes


def test_pack_help_tells_the_two_kinds_apart() -> None:
    shown = CliRunner().invoke(cli, ["pack", "--help"]).stdout
    assert "--no-artifacts" in shown and "--no-attachments" in shown
    assert "attachments stay" in shown and "rendered artifacts stay" in shown


def test_a_failed_pack_leaves_no_file(source: qa.Archive, tmp_path: Path) -> None:
    run = source.runs(limit=1)[0]
    data = bytearray(run.rho_path.read_bytes())
    data[-1] ^= 1
    run.rho_path.write_bytes(bytes(data))
    with pytest.raises(qa.ArchiveError, match="differs from its recorded checksum"):
        pack_bundle(source, tmp_path / "bad.qexb")
    assert list(tmp_path.glob("*qexb*")) == []


def test_reimport_is_a_no_op(source: qa.Archive, tmp_path: Path) -> None:
    bundle = tmp_path / "b.qexb"
    pack_bundle(source, bundle)
    target = qa.open_archive(tmp_path / "target")
    import_bundle(target, bundle)
    before = snapshot(target.root)
    report = import_bundle(target, bundle)
    assert report.imported == [] and len(report.identical) == 41
    assert snapshot(target.root) == before


def test_conflicts_are_listed_and_nothing_is_written(source: qa.Archive, tmp_path: Path) -> None:
    bundle = tmp_path / "b.qexb"
    pack_bundle(source, bundle)
    target = qa.open_archive(tmp_path / "target")
    changed = source.runs(limit=2)
    for run in changed:
        target.conn.execute(
            "INSERT INTO runs VALUES (?, 'mine', '{}', 'b', 1.0, ?, NULL)",
            (run.run_id, run.density_matrix_path),
        )
        np.save(target.root / run.density_matrix_path, bell_state())
    before = snapshot(target.root)
    with pytest.raises(BundleError, match="QEX-B025 2 run ID") as caught:
        import_bundle(target, bundle)
    assert all(run.run_id in str(caught.value) for run in changed)
    assert snapshot(target.root) == before
    dry = import_bundle(target, bundle, dry_run=True, on_conflict="skip")
    assert (
        dry.dry_run
        and len(dry.imported) == 39
        and sorted(dry.conflicts) == sorted(r.run_id for r in changed)
    )
    assert snapshot(target.root) == before
    report = import_bundle(target, bundle, on_conflict="skip")
    assert len(report.imported) == 39
    assert target.get(changed[0].run_id).experiment_name == "mine"


def test_provenance_is_recorded_beside_the_run(source: qa.Archive, tmp_path: Path) -> None:
    bundle = tmp_path / "from-ada.qexb"
    pack_bundle(source, bundle)
    target = qa.open_archive(tmp_path / "target")
    import_bundle(target, bundle)
    run = target.runs(limit=1)[0]
    contents = read_bundle(bundle)
    assert run.provenance is not None
    assert run.provenance["bundle_id"] == contents.bundle_id
    assert run.provenance["bundle_sha256"] == contents.sha256
    assert run.provenance["source_name"] == "from-ada.qexb"
    assert "qex" in (run.metadata or {}) and "import" not in json.dumps(run.metadata)
    shown = CliRunner().invoke(cli, ["-d", str(target.root), "show", run.run_id[:8]]).stdout
    assert "from-ada.qexb" in shown and contents.bundle_id in shown
    target.delete(run.run_id)  # provenance goes with the run
    assert (
        target.conn.execute(
            "SELECT count(*) FROM qex_imports WHERE run_id = ?", (run.run_id,)
        ).fetchone()[0]
        == 0
    )


def test_unpack_refuses_a_non_empty_directory(source: qa.Archive, tmp_path: Path) -> None:
    bundle = tmp_path / "b.qexb"
    pack_bundle(source, bundle, include_artifacts=False)
    with pytest.raises(qa.InvalidInput, match="not empty"):
        unpack_bundle(bundle, source.root)


def test_bagit_and_ro_crate_tools_accept_the_bundle(source: qa.Archive, tmp_path: Path) -> None:
    bagit = pytest.importorskip("bagit")
    rocrate = pytest.importorskip("rocrate.rocrate")
    bundle = tmp_path / "b.qexb"
    pack_bundle(source, bundle)
    extracted = tmp_path / "extracted"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(extracted)  # our own, just-verified bundle: safe to extract here
    bag = bagit.Bag(str(extracted))
    bag.validate()
    assert bag.info["QEX-Bundle-Version"] == "1"
    done = subprocess.run(
        [sys.executable, "-m", "bagit", "--validate", str(extracted)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "is valid" in done.stderr
    crate = rocrate.ROCrate(str(extracted / "data"))
    listed = {entity.id for entity in crate.get_entities() if "File" in _types(entity)}
    payload = {
        str(p.relative_to(extracted / "data"))
        for p in (extracted / "data").rglob("*")
        if p.is_file()
    }
    assert listed == payload - {"ro-crate-metadata.json"}


def _types(entity: object) -> list[str]:
    kind = entity.type  # type: ignore[attr-defined]
    return kind if isinstance(kind, list) else [kind]


def test_cli_pack_inspect_verify_import_unpack(source: qa.Archive, tmp_path: Path) -> None:
    runner = CliRunner()
    bundle = tmp_path / "ghz.qexb"
    packed = runner.invoke(
        cli,
        [
            "-d",
            str(source.root),
            "pack",
            "-o",
            str(bundle),
            "-e",
            "ghz_depolarizing",
            "-p",
            "n_qubits=2",
            "--note",
            "hi",
        ],
    )
    assert packed.exit_code == 0 and "packed 5 runs" in packed.stdout
    inspected = json.loads(runner.invoke(cli, ["inspect", str(bundle), "--json"]).stdout)
    assert (
        inspected["runs"] == 5
        and inspected["experiments"] == {"ghz_depolarizing": 5}
        and inspected["note"] == "hi"
    )
    verified = runner.invoke(cli, ["verify", str(bundle), "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["valid"] is True
    target = tmp_path / "target"
    dry = runner.invoke(cli, ["-d", str(target), "import", str(bundle), "--dry-run"])
    assert dry.exit_code == 0 and "would import 5 runs" in dry.stdout
    assert runner.invoke(cli, ["-d", str(target), "import", str(bundle)]).stdout.startswith(
        "imported 5 runs"
    )
    again = runner.invoke(cli, ["-d", str(target), "import", str(bundle)]).stdout
    assert "5 runs already present" in again and "nothing changed" in again
    unpacked = runner.invoke(cli, ["unpack", str(bundle), str(tmp_path / "new")])
    assert unpacked.exit_code == 0
    empty = runner.invoke(
        cli, ["-d", str(source.root), "pack", "-o", str(tmp_path / "x.qexb"), "-e", "nope"]
    )
    assert empty.exit_code == 1 and "no runs match" in empty.stderr


def test_cli_verify_reports_the_code(tmp_path: Path) -> None:
    junk = tmp_path / "junk.qexb"
    junk.write_bytes(b"not a zip at all" * 10)
    result = CliRunner().invoke(cli, ["verify", str(junk), "--json"])
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["code"] == "QEX-B001" and problem["severity"] == "error"
    plain = CliRunner().invoke(cli, ["verify", str(junk)])
    assert plain.exit_code == 1 and plain.stderr.startswith("QEX-B001")


def test_limits_are_options_named_in_the_error(source: qa.Archive, tmp_path: Path) -> None:
    bundle = tmp_path / "b.qexb"
    pack_bundle(source, bundle)
    result = CliRunner().invoke(cli, ["verify", str(bundle), "--max-members", "10"])
    assert (
        result.exit_code == 1 and "QEX-B003" in result.stderr and "--max-members" in result.stderr
    )
    result = CliRunner().invoke(cli, ["verify", str(bundle), "--max-file-size", "1K"])
    assert "QEX-B008" in result.stderr and "--max-file-size" in result.stderr
    assert CliRunner().invoke(cli, ["verify", str(bundle), "--max-file-size", "1G"]).exit_code == 0
    bad = CliRunner().invoke(cli, ["verify", str(bundle), "--max-total-size", "lots"])
    assert bad.exit_code == 1 and "--max-total-size 'lots' is not a size" in bad.stderr


def test_schema_is_one_file_for_checkouts_and_wheels(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    assert schema_path() == repo / "schemas" / "bundle.schema.json"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(repo)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("qex_archive-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("qex_archive/schemas/bundle.schema.json")
    assert packaged == (repo / "schemas" / "bundle.schema.json").read_bytes()


def test_imported_artifacts_are_foreign_until_rendered_here(
    source: qa.Archive,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    browser_from_env: None,
) -> None:
    bundle = tmp_path / "b.qexb"
    run = source.runs(limit=1)[0]
    pack_bundle(source, bundle, runs=[run.run_id])
    contents = read_bundle(bundle)
    target = qa.open_archive(tmp_path / "target")
    import_bundle(target, bundle)
    (artifact,) = target.get(run.run_id).artifacts
    assert artifact.foreign and artifact.origin == contents.bundle_id
    assert artifact.path.read_bytes() == run.artifacts[0].path.read_bytes()  # stored as it came
    assert not source.get(run.run_id).artifacts[0].foreign
    monkeypatch.setenv("BROWSER", "true")
    runner = CliRunner()
    refused = runner.invoke(cli, ["-d", str(target.root), "open", run.run_id[:8]])
    assert (
        refused.exit_code == 1
        and "came from bundle" in refused.stderr
        and "--trust" in refused.stderr
    )
    assert (
        runner.invoke(cli, ["-d", str(target.root), "open", run.run_id[:8], "--trust"]).exit_code
        == 0
    )
    (local,) = target.render(run.run_id)
    assert not local.foreign
    assert runner.invoke(cli, ["-d", str(target.root), "open", run.run_id[:8]]).exit_code == 0
    assert check_archive(target) == []


def test_verify_lists_every_damaged_file(source: qa.Archive, tmp_path: Path) -> None:
    from ..bundle_tools import read_members, write_zip

    bundle = tmp_path / "b.qexb"
    pack_bundle(source, bundle, selection=qa.RunFilter(experiment="rabi_sweep"))
    members = read_members(bundle)
    damaged = sorted(name for name in members if name.startswith("data/results/"))[:3]
    for name in damaged:
        members[name] = members[name][:-1] + bytes([members[name][-1] ^ 1])
    write_zip(bundle, members)
    result = CliRunner().invoke(cli, ["verify", str(bundle), "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert [(p["code"], p["member"]) for p in problems] == [("QEX-B012", name) for name in damaged]
    plain = CliRunner().invoke(cli, ["verify", str(bundle)])
    assert len(plain.stderr.strip().splitlines()) == 3
    with pytest.raises(BundleError) as caught:  # import stops at the first
        import_bundle(qa.open_archive(tmp_path / "t"), bundle)
    assert caught.value.problems == [caught.value]


def test_pack_takes_the_filters_of_runs(source: qa.Archive, tmp_path: Path) -> None:
    wanted = source.runs(experiment="ghz_depolarizing", where={"depolarizing": {">=": 0.1}})
    assert 0 < len(wanted) < source.count()
    report = qa.pack_bundle(
        source,
        tmp_path / "f.qexb",
        experiment="ghz_depolarizing",
        where={"depolarizing": {">=": 0.1}},
    )
    assert sorted(run["run_id"] for run in qa.read_bundle(report.path).runs) == sorted(
        run.run_id for run in wanted
    )
    one = wanted[0].run_id
    assert qa.pack_bundle(source, tmp_path / "one.qexb", runs=one[:8]).runs == 1
    with pytest.raises(qa.InvalidInput, match="either a selection or filter keywords"):
        qa.pack_bundle(
            source, tmp_path / "x.qexb", experiment="a", selection=qa.RunFilter(backend="b")
        )
    with pytest.raises(qa.InvalidInput, match="since 'not a time' is not a time"):
        qa.pack_bundle(source, tmp_path / "x.qexb", since="not a time")
    assert not (tmp_path / "x.qexb").exists()


HAND_MADE = [
    (
        "UPDATE runs SET run_id = 'run-001', density_matrix_path = 'results/run-001_rho.npy'",
        "bundles carry UUID run IDs only",
    ),
    ("UPDATE artifacts SET artifact_name = 'Bloch Sphere'", "its artifact 'Bloch Sphere'"),
    (
        "UPDATE artifacts SET artifact_type = 'text/html; charset=utf-8'",
        "artifacts/0/media_type: 'text/html; charset=utf-8' does not match",
    ),
    ("UPDATE runs SET params = '{\"theta\": NaN}'", "NaN and Infinity are not JSON"),
    ("UPDATE runs SET params = '{\"theta\": '", "params or metadata in the database are not JSON"),
    ("UPDATE runs SET params = '[1, 2]'", "params or metadata in the database are not JSON"),
    ("UPDATE runs SET experiment_name = 'tab\tname'", "contains control characters"),
    ("UPDATE runs SET timestamp = 'yesterday'", "timestamp: 'yesterday' is not of type 'number'"),
    ("UPDATE runs SET metadata = '[1]'", "params or metadata in the database are not JSON"),
    ("UPDATE runs SET metadata = NULL; FORTRAN", "Fortran order"),
]


@pytest.mark.parametrize(("sql", "message"), HAND_MADE, ids=[m for _, m in HAND_MADE])
def test_runs_a_bundle_cannot_carry_are_refused_before_writing(
    tmp_path: Path, sql: str, message: str
) -> None:
    """An archive made by hand from the schema document may hold what format 1 cannot carry;
    pack says which run and why instead of writing a bundle its own verify would refuse."""
    with qa.open_archive(tmp_path / "a") as arch:
        run = arch.record("e", params={"theta": 0.1}, backend="b", state=bell_state())
        if "run-001" in sql:
            run.rho_path.rename(run.rho_path.with_name("run-001_rho.npy"))
            arch.conn.execute("PRAGMA foreign_keys = OFF")
            arch.conn.execute("UPDATE artifacts SET run_id = 'run-001'")
            arch.conn.execute(
                "UPDATE qex_files SET path = 'results/run-001_rho.npy', run_id = 'run-001' "
                "WHERE path LIKE 'results/%'"
            )
        if sql.endswith("; FORTRAN"):
            sql = sql.removesuffix("; FORTRAN")
            np.save(run.rho_path, np.asfortranarray(bell_state() + 0j))
        arch.conn.execute(sql)
        arch.conn.commit()
        with pytest.raises(qa.ArchiveError, match="cannot go into a bundle: ") as caught:
            qa.pack_bundle(arch, tmp_path / "b.qexb")
        assert message in str(caught.value)
        assert not list(tmp_path.glob("*.qexb*"))
        if "artifact" in message:
            qa.pack_bundle(arch, tmp_path / "b.qexb", include_artifacts=False)
            assert qa.read_bundle(tmp_path / "b.qexb").runs


def test_a_hand_made_run_without_metadata_packs(tmp_path: Path) -> None:
    """No qex state summary: the shape comes from the .npy header, and the bundle is valid."""
    with qa.open_archive(tmp_path / "a") as arch:
        run = arch.record("e", backend="b", state=bell_state())
        arch.conn.execute("UPDATE runs SET metadata = NULL")
        arch.conn.commit()
        qa.pack_bundle(arch, tmp_path / "b.qexb")
    (record,) = qa.read_bundle(tmp_path / "b.qexb").runs
    assert record["metadata"] is None
    assert record["density_matrix"]["shape"] == [4, 4]
    with qa.open_archive(tmp_path / "c") as other:
        qa.import_bundle(other, tmp_path / "b.qexb")
        assert other.get(run.run_id).rho_path.read_bytes() == run.rho_path.read_bytes()


def test_a_damaged_row_with_the_same_id_is_a_conflict(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "a") as arch:
        run = arch.record("e", params={"x": 1}, backend="b", state=bell_state())
        qa.pack_bundle(arch, tmp_path / "b.qexb")
    with qa.open_archive(tmp_path / "c") as other:
        qa.import_bundle(other, tmp_path / "b.qexb")
        other.conn.execute("UPDATE runs SET params = '{\"x\": '")
        other.conn.commit()
        before = snapshot(tmp_path / "c")
        with pytest.raises(BundleError, match=f"QEX-B025 1 run ID.*{run.run_id}"):
            qa.import_bundle(other, tmp_path / "b.qexb")
        report = qa.import_bundle(other, tmp_path / "b.qexb", on_conflict="skip")
        assert report.conflicts == [run.run_id] and report.imported == []
        assert snapshot(tmp_path / "c") == before


def test_import_reports_progress_through_both_passes(source: qa.Archive, tmp_path: Path) -> None:
    pack_bundle(source, tmp_path / "all.qexb")
    bundle_size = (tmp_path / "all.qexb").stat().st_size

    class Progress:
        def __init__(self) -> None:
            self.done, self.total, self.extended = 0, bundle_size, []

        def __call__(self, n: int) -> None:
            self.done += n
            assert self.done <= self.total  # never past what it was told to expect

        def extend(self, n: int) -> None:
            self.extended.append((self.done, n))
            self.total += n

    progress = Progress()
    with qa.open_archive(tmp_path / "into") as target:
        report = import_bundle(target, tmp_path / "all.qexb", progress=progress)
    description = read_bundle(tmp_path / "all.qexb").description_bytes
    # the second pass (the runs read again to be inserted) is announced, then reported
    (announced,) = progress.extended
    assert announced == (bundle_size, description)  # the first pass read the whole file
    assert progress.done == progress.total and len(report.imported) == source.count()


def test_a_bundle_changed_between_the_passes_imports_nothing(
    source: qa.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qex_archive.bundle import importer
    from qex_archive.bundle.format import DESCRIPTION

    bundle = tmp_path / "b.qexb"
    pack_bundle(source, bundle)
    member = read_bundle(bundle).members[DESCRIPTION]
    verify_and_stage = importer._stage

    def stage_then_change(*args: object, **kwargs: object) -> object:
        contents = verify_and_stage(*args, **kwargs)  # type: ignore[arg-type]
        data = bytearray(bundle.read_bytes())
        data[member.data_start + member.compress_size // 2] ^= 0x01  # inside qex-bundle.json
        bundle.write_bytes(data)
        return contents

    monkeypatch.setattr(importer, "_stage", stage_then_change)
    target = qa.open_archive(tmp_path / "target")
    before = snapshot(target.root)
    with pytest.raises(BundleError):
        import_bundle(target, bundle)
    assert snapshot(target.root) == before and target.count() == 0


def test_a_full_scratch_disk_while_packing_is_one_line_and_leaves_no_file(
    source: qa.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import tempfile

    from qex_archive.bundle import records

    real_write = tempfile.SpooledTemporaryFile.write

    def full(self: tempfile.SpooledTemporaryFile[bytes], data: bytes) -> int:
        if self.tell() + len(data) > 64 * 1024:  # the disk is full past the first 64 KiB
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "write", full)
    monkeypatch.setattr(records, "BATCH", 5)  # many small writes, as for a large selection
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(cli, ["-d", str(source.root), "pack", "-o", str(out / "b.qexb")])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "scratch files" in result.stderr and "TMPDIR" in result.stderr, result.stderr
    assert list(out.iterdir()) == []


def test_the_import_bar_grows_for_the_second_pass() -> None:
    import io

    import click

    from qex_archive.cli import GrowingBar

    with click.progressbar(length=10, file=io.StringIO()) as bar:
        grows = GrowingBar(bar)
        grows(10)  # the first pass read the whole bundle
        assert bar.finished
        grows.extend(5)  # then qex-bundle.json is read again
        assert bar.length == 15 and not bar.finished
        grows(5)
        assert bar.finished and bar.pos == 15
