"""Bundles from strangers: every malicious or broken one is refused with its code, and the
archive it was imported into stays exactly as it was."""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.bundle import BundleError, Limits, import_bundle, pack_bundle, read_bundle
from qex_archive.bundle.format import BAG_INFO, BAGIT, DESCRIPTION, MANIFEST, TAGMANIFEST

from ..bundle_tools import Members, npy, patch_central, read_members, rebag, write_zip
from ..conftest import bell_state, snapshot

RUN = "0f0e0d0c-0b0a-4090-8070-605040302010"
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name")  # built on purpose below


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Members:
    """The members of a valid two-run bundle."""
    root = tmp_path_factory.mktemp("valid")
    with qa.open_archive(root / "a") as arch:
        arch.record("ghz", params={"shots": 10}, backend="b", state=bell_state())
        arch.record("ghz", params={"shots": 20}, backend="b", state=np.eye(2) / 2)
        pack_bundle(arch, root / "v.qexb")
    return read_members(root / "v.qexb")


def first(members: Members, kind: str) -> str:
    return sorted(name for name in members if name.startswith(f"data/{kind}/"))[0]


def description(members: Members) -> dict:  # type: ignore[type-arg]
    return json.loads(members[DESCRIPTION])


def with_description(members: Members, change: Callable[[dict], None]) -> Members:  # type: ignore[type-arg]
    value = description(members)
    change(value)
    return rebag({**members, DESCRIPTION: json.dumps(value).encode()})


def replace_member(members: Members, name: str, data: bytes) -> Members:
    """Swap one payload file and describe it consistently, so only its content is wrong."""

    def describe(value: dict) -> None:  # type: ignore[type-arg]
        for run in value["runs"]:
            for record in [run["density_matrix"], *run["artifacts"]]:
                if record["path"] == name:
                    record.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
                    if record is run["density_matrix"]:  # the state summary agrees too
                        run["metadata"]["state"]["sha256"] = record["sha256"]

    return with_description({**members, name: data}, describe)


def replace_npy(members: Members, data: bytes) -> Members:
    return replace_member(members, first(members, "results"), data)


def retag(members: Members) -> Members:
    """Recompute only the tag manifest."""
    tags = "".join(
        f"{hashlib.sha256(members[name]).hexdigest()}  {name}\n"
        for name in sorted((BAGIT, BAG_INFO, MANIFEST))
    )
    return {**members, TAGMANIFEST: tags.encode()}


Builder = Callable[[Members, Path], Path]


def zipped(
    change: Callable[[Members], Members | list[tuple[str, bytes]]], **options: int
) -> Builder:
    return lambda members, path: write_zip(path, change(dict(members)), **options)


def patched(change: Callable[[bytes, Members], bytes]) -> Builder:
    def build(members: Members, path: Path) -> Path:
        write_zip(path, members)
        path.write_bytes(change(path.read_bytes(), members))
        return path

    return build


def extra_member(name: str, data: bytes = b"x") -> Builder:
    return zipped(
        lambda m: rebag({**m, name: data}) if name.startswith("data/") else {**m, name: data}
    )


def deep_json(members: Members) -> Members:
    value = description(members)
    nested: object = 1
    for _ in range(200):
        nested = [nested]
    value["note"] = "x"
    raw = json.dumps(value)[:-1] + ', "deep": ' + json.dumps(nested) + "}"
    return rebag({**members, DESCRIPTION: raw.encode()})


def overlapping(raw: bytes, members: Members) -> bytes:
    names = sorted(members)
    with zipfile.ZipFile(__import__("io").BytesIO(raw)) as z:
        offset = z.getinfo(names[0]).header_offset
    return patch_central(raw, names[1], header_offset=offset)


def lying_size(raw: bytes, members: Members) -> bytes:
    name = first(members, "results")
    return patch_central(raw, name, file_size=len(members[name]) - 16)


def bomb(members: Members) -> Members:
    return replace_member(members, first(members, "artifacts"), b"\0" * (40 * 1024 * 1024))


def pickle_npy(members: Members) -> Members:
    import io
    import pickle

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    assert pickle.PROTO in buffer.getvalue()
    return replace_npy(members, buffer.getvalue())


def foreign_artifact(members: Members) -> Members:
    return rebag({**members, f"data/artifacts/{RUN}_bloch.html": b"<html>"})


CASES: dict[str, tuple[Builder, str]] = {
    "traversal ../": (extra_member("../evil.txt"), "QEX-B004"),
    "traversal data/../..": (extra_member("data/../../etc/passwd"), "QEX-B004"),
    "absolute path": (extra_member("/etc/passwd"), "QEX-B004"),
    "backslash path": (extra_member("data\\results\\x.npy"), "QEX-B004"),
    "drive letter": (extra_member("C:/windows/x.npy"), "QEX-B004"),
    "device name": (extra_member("data/results/CON"), "QEX-B004"),
    "control character": (extra_member("data/results/\x01.npy"), "QEX-B004"),
    "non-ASCII look-alike": (extra_member(f"data/results/{RUN}_rhо.npy"), "QEX-B004"),
    "directory entry": (extra_member("data/results/"), "QEX-B004"),
    "case variant of a tag file": (extra_member("BagIt.txt"), "QEX-B004"),
    "symlink entry": (zipped(lambda m: m, mode=0o120777), "QEX-B006"),
    "duplicate names": (
        zipped(lambda m: [*m.items(), (first(m, "results"), m[first(m, "results")])]),
        "QEX-B005",
    ),
    "encrypted member": (
        patched(lambda raw, m: patch_central(raw, first(m, "results"), flags=1)),
        "QEX-B007",
    ),
    "unsupported method (bzip2)": (zipped(lambda m: m, compress=zipfile.ZIP_BZIP2), "QEX-B007"),
    "declared 20 GB member": (
        patched(lambda raw, m: patch_central(raw, first(m, "artifacts"), file_size=0xFFFFFFF0)),
        "QEX-B008",
    ),
    "zip bomb (ratio)": (zipped(bomb), "QEX-B009"),
    "overlapping entries": (patched(overlapping), "QEX-B010"),
    "data before the first member": (patched(lambda raw, m: b"JUNK" + raw), "QEX-B010"),
    "lying declared size": (patched(lying_size), "QEX-B011"),
    "content changed after bagging": (
        zipped(lambda m: {**m, first(m, "results"): m[first(m, "results")][:-1] + b"\x01"}),
        "QEX-B012",
    ),
    "missing file": (
        zipped(lambda m: {k: v for k, v in m.items() if k != first(m, "artifacts")}),
        "QEX-B013",
    ),
    "missing tag file": (zipped(lambda m: {k: v for k, v in m.items() if k != BAGIT}), "QEX-B013"),
    "extra unlisted file": (
        zipped(lambda m: {**m, f"data/results/{RUN}_rho.npy": m[first(m, "results")]}),
        "QEX-B014",
    ),
    "bagit.txt of another version": (
        zipped(
            lambda m: rebag(
                {**m, BAGIT: b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n"}
            )
        ),
        "QEX-B015",
    ),
    "garbage bag-info": (zipped(lambda m: retag({**m, BAG_INFO: b"no colon here\n"})), "QEX-B016"),
    "bag-info tampered, tag manifest stale": (
        zipped(lambda m: {**m, BAG_INFO: b"no colon here\n"}),
        "QEX-B019",
    ),
    "wrong Payload-Oxum": (
        zipped(
            lambda m: retag(
                {**m, BAG_INFO: m[BAG_INFO].replace(b"Payload-Oxum: ", b"Payload-Oxum: 1")}
            )
        ),
        "QEX-B017",
    ),
    "manifest with a bad line": (
        zipped(lambda m: retag({**m, MANIFEST: b"not a manifest\n"})),
        "QEX-B018",
    ),
    "stale tag manifest": (
        zipped(
            lambda m: {
                **m,
                MANIFEST: m[MANIFEST] + b"",
                BAG_INFO: m[BAG_INFO] + b"Contact-Name: x\n",
            }
        ),
        "QEX-B019",
    ),
    "deep JSON": (zipped(deep_json), "QEX-B020"),
    "NaN in JSON": (
        zipped(
            lambda m: rebag(
                {**m, DESCRIPTION: m[DESCRIPTION].replace(b'"shots":10', b'"shots":NaN')}
            )
        ),
        "QEX-B020",
    ),
    "duplicate JSON key": (
        zipped(
            lambda m: rebag(
                {
                    **m,
                    DESCRIPTION: m[DESCRIPTION].replace(b'"shots":10', b'"shots":10,"shots":11'),
                }
            )
        ),
        "QEX-B020",
    ),
    "schema: extra property": (
        zipped(lambda m: with_description(m, lambda d: d["runs"][0].update(evil=1))),
        "QEX-B021",
    ),
    "schema: bad run_id": (
        zipped(lambda m: with_description(m, lambda d: d["runs"][0].update(run_id="../../x"))),
        "QEX-B021",
    ),
    "newer format version": (
        zipped(lambda m: with_description(m, lambda d: d.update(format_version=2))),
        "QEX-B024",
    ),
    "object dtype .npy": (
        zipped(
            lambda m: replace_npy(
                m, npy("{'descr': '|O', 'fortran_order': False, 'shape': (4, 4), }", b"\0" * 128)
            )
        ),
        "QEX-B022",
    ),
    "pickle inside .npy": (zipped(pickle_npy), "QEX-B022"),
    "Fortran-order .npy": (
        zipped(
            lambda m: replace_npy(
                m, npy("{'descr': '<c16', 'fortran_order': True, 'shape': (4, 4), }", b"\0" * 256)
            )
        ),
        "QEX-B022",
    ),
    "non-square .npy": (
        zipped(
            lambda m: replace_npy(
                m, npy("{'descr': '<c16', 'fortran_order': False, 'shape': (4, 2), }", b"\0" * 128)
            )
        ),
        "QEX-B022",
    ),
    "forged shape .npy": (
        zipped(
            lambda m: replace_npy(
                m,
                npy(
                    "{'descr': '<c16', 'fortran_order': False, 'shape': (4096, 4096), }",
                    b"\0" * 256,
                ),
            )
        ),
        "QEX-B022",
    ),
    "truncated .npy": (zipped(lambda m: replace_npy(m, m[first(m, "results")][:-16])), "QEX-B022"),
    "code in the .npy header": (
        zipped(lambda m: replace_npy(m, npy("__import__('os').system('echo pwned')", b""))),
        "QEX-B022",
    ),
    "artifact of an unknown run": (zipped(foreign_artifact), "QEX-B023"),
    "description and manifest disagree": (
        zipped(
            lambda m: with_description(
                m, lambda d: d["runs"][0]["density_matrix"].update(sha256="0" * 64)
            )
        ),
        "QEX-B023",
    ),
    "run pointing at another run's file": (
        zipped(
            lambda m: with_description(
                m,
                lambda d: d["runs"][0]["density_matrix"].update(
                    path=d["runs"][1]["density_matrix"]["path"]
                ),
            )
        ),
        "QEX-B023",
    ),
    "control characters in a name": (
        zipped(
            lambda m: with_description(
                m, lambda d: d["runs"][0].update(experiment_name="\x1b[31mred")
            )
        ),
        "QEX-B023",
    ),
    "junk after the end record": (patched(lambda raw, m: raw + b"trailing junk"), "QEX-B002"),
    "ZIP comment": (patched(lambda raw, m: raw[:-2] + struct.pack("<H", 4) + b"evil"), "QEX-B002"),
    "not a ZIP": (
        lambda m, path: (path.write_bytes(b"%PDF-1.7 definitely not a zip" * 10), path)[1],
        "QEX-B001",
    ),
    "truncated ZIP": (patched(lambda raw, m: raw[: len(raw) // 2]), "QEX-B001"),
    "empty file": (lambda m, path: (path.write_bytes(b""), path)[1], "QEX-B001"),
}


def test_there_are_at_least_30_hostile_bundles() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_bundle_is_refused_and_changes_nothing(
    case: str, valid: Members, tmp_path: Path
) -> None:
    build, code = CASES[case]
    bundle = build(valid, tmp_path / "hostile.qexb")
    limits = Limits(max_file_size=1 << 30)
    with pytest.raises(BundleError) as verified:
        read_bundle(bundle, limits)
    assert verified.value.code == code, str(verified.value)
    assert "\n" not in str(verified.value)

    with qa.open_archive(tmp_path / "target") as target:
        target.record("mine", backend="b", state=bell_state())
        before = snapshot(target.root)
        outside_before = sorted(p for p in tmp_path.rglob("*") if "target" not in p.parts)
        with pytest.raises(BundleError) as imported:
            import_bundle(target, bundle, limits=limits)
        assert imported.value.code == code
        assert snapshot(target.root) == before
        assert sorted(p for p in tmp_path.rglob("*") if "target" not in p.parts) == outside_before
        assert not (target.root / ".staging").exists()


def test_the_valid_bundle_itself_passes(valid: Members, tmp_path: Path) -> None:
    bundle = write_zip(tmp_path / "ok.qexb", valid)
    assert len(read_bundle(bundle).runs) == 2
    assert len(read_bundle(write_zip(tmp_path / "rebagged.qexb", rebag(valid))).runs) == 2


def test_a_bomb_within_raised_limits_is_read_without_inflating_more_than_declared(
    valid: Members, tmp_path: Path
) -> None:
    bundle = zipped(bomb)(valid, tmp_path / "big.qexb")
    contents = read_bundle(bundle, Limits(max_ratio=100_000))
    assert contents.member_sizes[first(valid, "artifacts")] == 40 * 1024 * 1024
    assert zlib  # the deflate stream was read through zipfile's bounded reader


def test_an_unknown_zip_version_is_a_bundle_error_not_a_crash(
    valid: Members, tmp_path: Path
) -> None:
    """Found by the Hypothesis test: a 'version needed' no reader knows (Info-ZIP refuses it
    too) is refused with a code, not a crash."""
    bundle = write_zip(tmp_path / "v.qexb", valid)
    bundle.write_bytes(patch_central(bundle.read_bytes(), BAGIT, version_needed=135))  # 13.5
    with pytest.raises(BundleError) as caught:
        read_bundle(bundle)
    assert caught.value.code == "QEX-B007" and "ZIP version 13.5" in str(caught.value)
