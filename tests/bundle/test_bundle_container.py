"""The ZIP layer, closed-world: every byte accounted for, headers agreeing, every CRC checked,
caps applied before anything is parsed or inflated; and hostile bundles bounded in memory
and time."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qex_archive as qa
from qex_archive.bundle import BundleError, import_bundle, pack_bundle, read_bundle
from qex_archive.bundle.format import DESCRIPTION

from ..bundle_tools import read_members, rebag, write_zip
from ..conftest import bell_state, snapshot

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
END = struct.Struct("<4sHHHHIIH")


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("valid")
    with qa.open_archive(root / "a") as arch:
        arch.record("e", params={"i": 0}, backend="b", state=bell_state())
        arch.record("e", params={"i": 1}, backend="b", state=np.eye(2) / 2)
        pack_bundle(arch, root / "v.qexb")
    return (root / "v.qexb").read_bytes()


def records(raw: bytes) -> list[tuple[int, int]]:
    """(local header offset, central entry offset) of each member."""
    end = len(raw) - END.size
    _, _, _, _, count, _, directory_at, _ = END.unpack_from(raw, end)
    found, position = [], directory_at
    for _ in range(count):
        fields = CENTRAL.unpack_from(raw, position)
        found.append((fields[16], position))
        position += CENTRAL.size + fields[10] + fields[11] + fields[12]
    return found


def patch(raw: bytes, offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(raw)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def insert(raw: bytes, at: int, extra: bytes) -> bytes:
    """``extra`` inserted at ``at``, with every recorded offset past it moved along."""
    by = len(extra)
    end = len(raw) - END.size
    directory_at = END.unpack_from(raw, end)[6]
    data = bytearray(raw[:at] + extra + raw[at:])
    for local, central in records(raw):
        where = central + by if central >= at else central
        if local >= at:
            struct.pack_into("<I", data, where + 42, local + by)
    if directory_at >= at:
        struct.pack_into("<I", data, end + by + 16, directory_at + by)
    return bytes(data)


def stored_member(raw: bytes) -> tuple[int, int]:
    for local, central in records(raw):
        if CENTRAL.unpack_from(raw, central)[4] == 0:
            return local, central
    raise AssertionError("no stored member")


def hidden_bytes(raw: bytes) -> bytes:
    second_local = sorted(local for local, _ in records(raw))[1]
    return insert(raw, second_local, b"HIDDEN")


def wrong_stored_crc(raw: bytes) -> bytes:
    local, central = stored_member(raw)
    crc = CENTRAL.unpack_from(raw, central)[7] ^ 1
    return patch(patch(raw, local + 14, "<I", crc), central + 16, "<I", crc)


def unicode_path_extra(raw: bytes) -> bytes:
    """An Info-ZIP Unicode Path field (0x7075) naming another file, in both headers."""
    local, central = records(raw)[0]
    name_length = LOCAL.unpack_from(raw, local)[9]
    extra = struct.pack("<HHB", 0x7075, 5 + 6, 1) + struct.pack("<I", 0) + b"evil.x"
    raw = patch(raw, local + 28, "<H", len(extra))
    raw = insert(raw, local + LOCAL.size + name_length, extra)
    _, central = records(raw)[0]
    fields = CENTRAL.unpack_from(raw, central)
    raw = patch(raw, central + 30, "<H", len(extra))
    at = central + CENTRAL.size + fields[10]
    raw = raw[:at] + extra + raw[at:]
    end = len(raw) - END.size
    return patch(raw, end + 12, "<I", END.unpack_from(raw, end)[5] + len(extra))


def lying_count(raw: bytes) -> bytes:
    end = len(raw) - END.size
    count = END.unpack_from(raw, end)[4]
    return patch(patch(raw, end + 8, "<H", count - 1), end + 10, "<H", count - 1)


def fake_end_in_comment(raw: bytes) -> bytes:
    end = len(raw) - END.size
    fake = END.pack(b"PK\x05\x06", 0, 0, 1, 1, 46, 0, 0)
    return patch(raw, end + 20, "<H", len(fake)) + fake


def disagreeing_method(raw: bytes) -> bytes:
    local, _ = stored_member(raw)
    return patch(raw, local + 8, "<H", 8)


def disagreeing_name(raw: bytes) -> bytes:
    local, _ = records(raw)[-1]
    at = local + LOCAL.size
    data = bytearray(raw)
    data[at] = ord("B") if data[at] != ord("B") else ord("C")
    return bytes(data)


def duplicated_end(raw: bytes) -> bytes:
    return raw + raw[-END.size :]


def data_descriptor_flag(raw: bytes) -> bytes:
    local, central = records(raw)[0]
    return patch(patch(raw, local + 6, "<H", 0x8), central + 8, "<H", 0x8)


CASES = {
    "bytes hidden between members": (hidden_bytes, "QEX-B010"),
    "wrong CRC-32 on a stored member": (wrong_stored_crc, "QEX-B012"),
    "Unicode Path extra field": (unicode_path_extra, "QEX-B007"),
    "end record whose count lies": (lying_count, "QEX-B010"),
    "empty ZIP": (lambda raw: END.pack(b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0), "QEX-B001"),
    "fake end record in the comment": (fake_end_in_comment, "QEX-B002"),
    "local header with another method": (disagreeing_method, "QEX-B010"),
    "local header with another name": (disagreeing_name, "QEX-B010"),
    "end record twice": (duplicated_end, "QEX-B002"),
    "data descriptor flag": (data_descriptor_flag, "QEX-B007"),
}


def _unzip_accepts(path: Path) -> bool:
    done = subprocess.run(["unzip", "-tqq", str(path)], capture_output=True)
    return done.returncode == 0


def assert_verify_equals_import(path: Path, tmp_path: Path) -> BundleError | None:
    """verify and import give the same answer; a refused import changes nothing."""
    try:
        read_bundle(path)
        verdict = None
    except BundleError as exc:
        verdict = exc
    target = tmp_path / "target"
    with qa.open_archive(target) as arch:
        arch.record("kept", backend="b", state=bell_state())
        before = snapshot(target)
        try:
            import_bundle(arch, path)
        except BundleError as exc:
            assert verdict is not None and exc.code == verdict.code, (exc, verdict)
            assert snapshot(target) == before
        else:
            assert verdict is None
    shutil.rmtree(target)
    return verdict


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_zip_that_is_not_exactly_a_bundle_is_refused(
    valid: bytes, tmp_path: Path, case: str
) -> None:
    mutate, code = CASES[case]
    path = tmp_path / "m.qexb"
    path.write_bytes(mutate(valid))
    verdict = assert_verify_equals_import(path, tmp_path)
    assert verdict is not None and verdict.code == code, verdict


def test_info_zip_agrees_with_what_is_accepted(valid: bytes, tmp_path: Path) -> None:
    path = tmp_path / "v.qexb"
    path.write_bytes(valid)
    if shutil.which("unzip"):
        assert _unzip_accepts(path)
    assert assert_verify_equals_import(path, tmp_path) is None


# A structural mutator: header fields, gaps, extra fields, end records; not just byte flips.
FIELDS = {
    # (which header, offset in it, struct format)
    "local.version": ("local", 4, "<H"),
    "local.flags": ("local", 6, "<H"),
    "local.method": ("local", 8, "<H"),
    "local.time": ("local", 10, "<H"),
    "local.crc": ("local", 14, "<I"),
    "local.compressed": ("local", 18, "<I"),
    "local.size": ("local", 22, "<I"),
    "local.name_length": ("local", 26, "<H"),
    "local.extra_length": ("local", 28, "<H"),
    "central.made_by": ("central", 4, "<H"),
    "central.version": ("central", 6, "<H"),
    "central.flags": ("central", 8, "<H"),
    "central.method": ("central", 10, "<H"),
    "central.crc": ("central", 16, "<I"),
    "central.compressed": ("central", 20, "<I"),
    "central.size": ("central", 24, "<I"),
    "central.name_length": ("central", 28, "<H"),
    "central.extra_length": ("central", 30, "<H"),
    "central.comment_length": ("central", 32, "<H"),
    "central.disk": ("central", 34, "<H"),
    "central.external": ("central", 38, "<I"),
    "central.offset": ("central", 42, "<I"),
}
END_FIELDS = {"count": (10, "<H"), "size": (12, "<I"), "offset": (16, "<I")}

structural = st.one_of(
    st.tuples(
        st.just("field"),
        st.sampled_from(sorted(FIELDS)),
        st.integers(min_value=0, max_value=50),
        st.integers(min_value=0, max_value=0xFFFFFFFF),
    ),
    st.tuples(
        st.just("end"),
        st.sampled_from(sorted(END_FIELDS)),
        st.just(0),
        st.integers(min_value=0, max_value=0xFFFFFFFF),
    ),
    st.tuples(
        st.just("gap"), st.just(""), st.integers(min_value=0, max_value=50), st.integers(1, 64)
    ),
    st.tuples(
        st.just("extra"),
        st.just(""),
        st.integers(min_value=0, max_value=50),
        st.integers(0, 0xFFFF),
    ),
    st.tuples(st.just("end-twice"), st.just(""), st.just(0), st.just(0)),
)


def mutate(raw: bytes, mutation: tuple[str, str, int, int]) -> bytes:
    kind, field, index, value = mutation
    members = records(raw)
    local, central = members[index % len(members)]
    if kind == "field":
        where, offset, fmt = FIELDS[field]
        value &= 0xFFFF if fmt == "<H" else 0xFFFFFFFF
        return patch(raw, (local if where == "local" else central) + offset, fmt, value)
    if kind == "end":
        offset, fmt = END_FIELDS[field]
        value &= 0xFFFF if fmt == "<H" else 0xFFFFFFFF
        return patch(raw, len(raw) - END.size + offset, fmt, value)
    if kind == "gap":
        return insert(raw, local, os.urandom(value))
    if kind == "extra":  # an extra field of any id, declared in the local header
        name_length = LOCAL.unpack_from(raw, local)[9]
        extra = struct.pack("<HH", value, 4) + b"\0" * 4
        raw = patch(raw, local + 28, "<H", len(extra))
        return insert(raw, local + LOCAL.size + name_length, extra)
    return duplicated_end(raw)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutation=structural)
def test_structural_damage_gets_the_same_answer_from_verify_and_import(
    valid: bytes, tmp_path_factory: pytest.TempPathFactory, mutation: tuple[str, str, int, int]
) -> None:
    tmp_path = tmp_path_factory.mktemp("mutant")
    path = tmp_path / "m.qexb"
    path.write_bytes(mutate(valid, mutation))
    verdict = assert_verify_equals_import(path, tmp_path)
    if verdict is None and shutil.which("unzip"):
        # whatever qex accepts, Info-ZIP reads as the same members, none renamed
        assert _unzip_accepts(path), mutation
        listed = subprocess.run(["unzip", "-Z1", str(path)], capture_output=True, text=True)
        assert sorted(listed.stdout.split()) == sorted(read_members(path)), mutation


# -- memory and time: hostile bundles under the default limits --------------------------------

GUARD = textwrap.dedent(
    """
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    import qex_archive as qa
    from qex_archive.bundle import BundleError, import_bundle, read_bundle
    action, bundle, target = sys.argv[1:4]
    # CPU time of this process (all its threads), not the clock: a busy machine slows the
    # clock of both measures unequally, not the work each does
    start = time.process_time()
    try:
        if action == "verify":
            read_bundle(bundle)
        else:
            with qa.open_archive(target) as arch:
                import_bundle(arch, bundle)
        outcome = "accepted"
    except BundleError as exc:
        outcome = exc.code
    elapsed = time.process_time() - start
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
    # the least any reader does with this file, timed here on the same machine: hash its bytes
    # once and parse its description, if it has one of at most 64 MB, with Python's json
    import hashlib, zipfile
    start = time.process_time()
    digest = hashlib.sha256()
    with open(bundle, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    try:
        with zipfile.ZipFile(bundle) as archive:
            info = archive.getinfo("data/qex-bundle.json")
            if info.file_size <= 64 * 1024**2:
                json.loads(archive.read(info), object_pairs_hook=dict)
    except (zipfile.BadZipFile, KeyError, ValueError):
        pass  # not a ZIP zipfile can read, or no description to parse
    floor = time.process_time() - start
    result = {"outcome": outcome, "seconds": elapsed, "floor": floor, "peak_mb": peak / 1024}
    print(json.dumps(result))
    """
)


def _description_bomb(members: dict[str, bytes]) -> dict[str, bytes]:
    """Just under the value cap: a million tiny objects (92 bytes of Python each), with
    random keys so that the member does not compress past the ratio cap."""
    letters = np.random.default_rng(1).integers(97, 123, (490_000, 4), dtype=np.uint8)
    keys = [row.tobytes().decode() for row in letters]
    text = '{"x":[' + ",".join(f'{{"{key}":1}}' for key in keys) + "]}"
    return rebag({**members, DESCRIPTION: text.encode()})


def _description_text(members: dict[str, bytes]) -> dict[str, bytes]:
    """Just under the size cap: one long string that does not compress."""
    noise = np.random.default_rng(0).integers(97, 123, 31 * 1024**2, dtype=np.uint8)
    text = b'{"note":"' + noise.tobytes() + b'"}'
    return rebag({**members, DESCRIPTION: text})


def _many_members(members: dict[str, bytes]) -> list[tuple[str, bytes]]:
    run = "0f0e0d0c-0b0a-4090-8070-605040302010"
    extra = [(f"data/artifacts/{run}_p{i}.txt", b"") for i in range(299_000)]
    return [*members.items(), *extra]


def _zeros(members: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """1 MiB members of zeros: each under the per-member floor, 2 GiB in all."""
    run = "0f0e0d0c-0b0a-4090-8070-605040302010"
    zero = b"\0" * (1 << 20)
    return [*members.items(), *((f"data/artifacts/{run}_z{i}.bin", zero) for i in range(2048))]


def _claims(raw: bytes, count: int, size: int) -> bytes:
    end = len(raw) - END.size
    raw = patch(patch(raw, end + 8, "<H", count), end + 10, "<H", count)
    return patch(raw, end + 12, "<I", size)


HOSTILE = {
    "a million JSON values": (lambda m, p: write_zip(p, _description_bomb(m)), "QEX-B021"),
    "31 MB of JSON text": (lambda m, p: write_zip(p, _description_text(m)), "QEX-B021"),
    "299,000 members": (lambda m, p: write_zip(p, _many_members(m)), "QEX-B014"),
    "2 GiB of zeros in 1 MiB members": (lambda m, p: write_zip(p, _zeros(m)), "QEX-B009"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, valid: bytes) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    (root / "v.qexb").write_bytes(valid)
    members = read_members(root / "v.qexb")
    built = {name: build(members, root / f"{i}.qexb") for i, (name, (build, _)) in enumerate(
        sorted(HOSTILE.items())
    )}  # fmt: skip
    lying = root / "lying.qexb"
    lying.write_bytes(_claims(valid, 0xFFFF, 0xFFFFFF00))
    built["an end record claiming 65,535 members and 4 GB of directory"] = lying
    return built


EXPECTED = {**{name: code for name, (_, code) in HOSTILE.items()}}
EXPECTED["an end record claiming 65,535 members and 4 GB of directory"] = "QEX-B010"


@pytest.mark.slow
@pytest.mark.parametrize("action", ["verify", "import"])
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_hostile_bundles_stay_within_memory_and_time(
    hostile: dict[str, Path], tmp_path: Path, case: str, action: str
) -> None:
    bundle = hostile[case]
    done = subprocess.run(
        [sys.executable, "-c", GUARD, action, str(bundle), str(tmp_path / "target")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == EXPECTED[case], result
    assert result["peak_mb"] < 200, result
    # CPU time against the floor measured (as CPU time) by the same child: a hostile bundle
    # costs a few times what reading it once costs, whatever the machine's speed or load
    assert result["seconds"] < 0.5 + 5 * result["floor"], result
