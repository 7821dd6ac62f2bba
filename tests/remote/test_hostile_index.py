"""Remotes against a hostile or large bucket (issue 22, class 3): every index object is
checked against its schema, its size bound and its name; a bad one, or a missing, damaged
or misdescribed bundle, is named and left out while the good ones are pulled."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qex_archive as qa
from qex_archive.cli import cli

from ..conftest import bell_state, snapshot

pytest.importorskip("fsspec")


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-d", str(data), *args])


def no_traceback(result: Result) -> None:
    assert result.exit_code in (0, 1), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


def tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def shared(tmp_path: Path) -> dict[str, object]:
    """A directory remote alice pushed one good bundle to, bob with the remote added, and
    a sentinel bundle outside the remote (one that ``../../outside/x`` would name)."""
    remote = tmp_path / "site" / "remote"
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    with qa.open_archive(alice) as arch:
        good = arch.record("ghz", backend="b", state=bell_state()).run_id
    for who in (alice, bob):
        assert run(who, "remote", "add", "lab", str(remote)).exit_code == 0
    pushed = run(alice, "push", "lab")
    assert pushed.exit_code == 0, pushed.output
    outside = tmp_path / "site" / "outside"
    outside.mkdir()
    with qa.open_archive(tmp_path / "eve") as eve:
        evil = eve.record("evil", backend="b", state=bell_state()).run_id
        qa.pack_bundle(eve, outside / "x.qexb")
    return {"remote": remote, "alice": alice, "bob": bob, "good": good, "evil": evil,
            "outside": outside, "site": tmp_path / "site"}  # fmt: skip


def bob_runs(bob: Path) -> list[str]:
    with qa.open_archive(bob) as arch:
        return sorted(r.run_id for r in arch.runs())


def an_index(bundle_id: str, runs: object) -> bytes:
    return json.dumps(
        {"bundle_id": bundle_id, "bundle": f"bundles/{bundle_id}.qexb", "runs": runs}
    ).encode()


def a_run(run_id: str | None = None) -> dict[str, object]:
    return {"run_id": run_id or str(uuid.uuid4()), "experiment_name": "ghz",
            "backend_name": "b", "timestamp": 1.7e9, "rho_sha256": "0" * 64}  # fmt: skip


HOSTILE = {
    "runs-of-numbers": lambda i: an_index(i, [1]),
    "no-run-id": lambda i: an_index(i, [{"experiment_name": "ghz"}]),
    "run-id-not-text": lambda i: an_index(i, [{**a_run(), "run_id": 7}]),
    "runs-not-a-list": lambda i: an_index(i, {"a": 1}),
    "not-json": lambda i: b"{not json",
    "nan": lambda i: an_index(i, [a_run()]).replace(b"1700000000.0", b"NaN"),
    "deep": lambda i: b"[" * 100_000 + b"]" * 100_000,
    "not-utf8": lambda i: b'{"bundle_id": "\xff"}',
    "a-list": lambda i: b"[]",
    "outside": lambda i: json.dumps(
        {"bundle_id": "../../outside/x", "bundle": "../../outside/x.qexb", "runs": [a_run()]}
    ).encode(),
    "other-id": lambda i: an_index(str(uuid.uuid4()), [a_run()]),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_malformed_index_is_named_and_skipped_and_the_good_bundle_pulled(
    shared: dict[str, object], kind: str
) -> None:
    remote, bob = shared["remote"], shared["bob"]
    assert isinstance(remote, Path) and isinstance(bob, Path)
    bundle_id = str(uuid.uuid4())
    name = f"index/{bundle_id}.json"
    (remote / name).write_bytes(HOSTILE[kind](bundle_id))
    before_site = {k: v for k, v in tree(shared["site"]).items()}  # type: ignore[arg-type]
    pulled = run(bob, "pull", "lab")
    no_traceback(pulled)
    assert pulled.exit_code == 1 and name in pulled.stderr, pulled.output
    assert "pulled 1 run in 1 bundle" in pulled.stdout
    assert bob_runs(bob) == [shared["good"]]
    status = run(bob, "remote", "status", "lab")
    no_traceback(status)
    assert status.exit_code == 1 and name in status.stderr and "both: 1" in status.stdout
    pushed = run(shared["alice"], "push", "lab")  # type: ignore[arg-type]
    no_traceback(pushed)
    assert pushed.exit_code == 0 and "nothing to push" in pushed.output, pushed.output
    assert tree(shared["site"]) == before_site  # type: ignore[arg-type]


def test_an_index_naming_a_bundle_outside_the_remote_imports_nothing_from_there(
    shared: dict[str, object],
) -> None:
    remote, bob = shared["remote"], shared["bob"]
    assert isinstance(remote, Path) and isinstance(bob, Path)
    evil = str(shared["evil"])
    hostile = {"bundle_id": "../../outside/x", "bundle": "../outside/x.qexb"}
    (remote / "index" / "x.json").write_text(json.dumps({**hostile, "runs": [a_run(evil)]}))
    linked = str(uuid.uuid4())  # a bundle that is a link to one outside the remote
    (remote / "index" / f"{linked}.json").write_bytes(an_index(linked, [a_run(evil)]))
    outside = shared["outside"]
    assert isinstance(outside, Path)
    (remote / "bundles" / f"{linked}.qexb").symlink_to(outside / "x.qexb")
    pulled = run(bob, "pull", "lab")
    no_traceback(pulled)
    assert pulled.exit_code == 1 and "index/x.json" in pulled.stderr
    assert f"bundles/{linked}.qexb: not a regular file" in pulled.stderr
    assert bob_runs(bob) == [shared["good"]]


def test_a_missing_or_damaged_bundle_is_skipped_and_the_others_pulled(
    shared: dict[str, object], tmp_path: Path
) -> None:
    remote, bob = shared["remote"], shared["bob"]
    assert isinstance(remote, Path) and isinstance(bob, Path)
    missing, damaged = str(uuid.uuid4()), str(uuid.uuid4())
    (remote / "index" / f"{missing}.json").write_bytes(an_index(missing, [a_run()]))
    (remote / "index" / f"{damaged}.json").write_bytes(an_index(damaged, [a_run()]))
    (remote / "bundles" / f"{damaged}.qexb").write_bytes(b"PK\x03\x04 not a bundle")
    pulled = run(bob, "pull", "lab")
    no_traceback(pulled)
    assert pulled.exit_code == 1, pulled.output
    assert f"skipped bundles/{missing}.qexb: missing" in pulled.stderr
    assert f"bundles/{damaged}.qexb" in pulled.stderr and "QEX-B" in pulled.stderr
    assert "pulled 1 run in 1 bundle" in pulled.stdout
    assert bob_runs(bob) == [shared["good"]]


def test_an_index_that_lies_about_its_bundle_is_not_trusted(shared: dict[str, object]) -> None:
    """The index names a run its bundle does not hold (say, a run bob lacks that the
    bundle will never bring): the bundle is refused by name, nothing of it imported."""
    remote, bob, alice = shared["remote"], shared["bob"], shared["alice"]
    assert isinstance(remote, Path) and isinstance(bob, Path) and isinstance(alice, Path)
    with qa.open_archive(alice) as arch:
        second = arch.record("ghz", backend="b", state=bell_state()).run_id
    assert run(alice, "push", "lab").exit_code == 0
    (page,) = [p for p in (remote / "index").iterdir() if second in p.read_text() and p.is_file()]
    value = json.loads(page.read_text())
    value["runs"].append(a_run())  # a run the bundle does not hold
    page.write_text(json.dumps(value))
    pulled = run(bob, "pull", "lab")
    no_traceback(pulled)
    assert pulled.exit_code == 1 and f"bundles/{value['bundle_id']}.qexb" in pulled.stderr
    assert "does not hold the runs its index lists" in pulled.stderr
    assert bob_runs(bob) == [shared["good"]]
    value["runs"] = [{**value["runs"][0], "rho_sha256": "1" * 64}]  # a wrong checksum
    page.write_text(json.dumps(value))
    assert run(bob, "pull", "lab").exit_code == 1
    assert bob_runs(bob) == [shared["good"]]


def test_an_index_over_the_size_bound_is_reported_not_silently_skipped(
    shared: dict[str, object],
) -> None:
    from qex_archive.remote.index import MAX_INDEX_BYTES

    remote, bob = shared["remote"], shared["bob"]
    assert isinstance(remote, Path) and isinstance(bob, Path)
    big = str(uuid.uuid4())
    runs = [a_run() for _ in range(MAX_INDEX_BYTES // 150 + 10)]
    (remote / "index" / f"{big}.json").write_bytes(an_index(big, runs))
    status = run(bob, "remote", "status", "lab")
    no_traceback(status)
    assert status.exit_code == 1 and f"index/{big}.json" in status.stderr
    assert "larger than" in status.stderr


def test_a_large_push_is_split_into_pages_that_pull_and_status_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qex_archive.remote import index

    monkeypatch.setattr(index, "PAGE_RUNS", 3)
    remote = tmp_path / "remote"
    with qa.open_archive(tmp_path / "alice") as arch:
        ids = sorted(
            arch.record("e", params={"i": i}, backend="b", state=bell_state()).run_id
            for i in range(7)
        )
    for who in ("alice", "bob"):
        assert run(tmp_path / who, "remote", "add", "lab", str(remote)).exit_code == 0
    pushed = run(tmp_path / "alice", "push", "lab", "--json")
    assert pushed.exit_code == 0, pushed.output
    bundle_id = json.loads(pushed.stdout)["bundle_id"]
    names = sorted(p.name for p in (remote / "index").iterdir())
    assert names == [f"{bundle_id}.2.json", f"{bundle_id}.3.json", f"{bundle_id}.json"]
    pages = [json.loads((remote / "index" / name).read_text()) for name in names]
    assert sorted(len(page["runs"]) for page in pages) == [1, 3, 3]
    assert {page["pages"] for page in pages} == {3}
    again = run(tmp_path / "alice", "push", "lab")
    assert again.exit_code == 0 and "nothing to push" in again.output
    status = run(tmp_path / "bob", "remote", "status", "lab", "--json")
    assert status.exit_code == 0 and len(json.loads(status.stdout)["only_there"]) == 7
    pulled = run(tmp_path / "bob", "pull", "lab")
    assert pulled.exit_code == 0 and "pulled 7 runs in 1 bundle" in pulled.output
    assert bob_runs(tmp_path / "bob") == ids


def test_every_page_a_push_writes_follows_the_schema_and_its_bounds(tmp_path: Path) -> None:
    import jsonschema

    from qex_archive.remote.index import PAGE_BYTES, PAGE_RUNS, pages_of, schema_path

    runs = [
        {"run_id": str(uuid.uuid4()), "experiment_name": "\U0001f600" * 256,
         "backend_name": "b" * 256, "timestamp": 1.7e9,
         "density_matrix": {"sha256": "a" * 64}}
        for _ in range(5000)
    ]  # fmt: skip
    bundle_id = str(uuid.uuid4())
    pages = pages_of(bundle_id, runs)
    schema = json.loads(schema_path().read_text())
    seen = []
    for number, data in enumerate(pages, 1):
        assert len(data) <= PAGE_BYTES + 4096
        value = json.loads(data)
        jsonschema.validate(value, schema)
        assert value["page"] == number and value["pages"] == len(pages)
        assert len(value["runs"]) <= PAGE_RUNS
        seen.extend(run["run_id"] for run in value["runs"])
    assert seen == [run["run_id"] for run in runs]


def test_the_index_schema_ships_beside_the_bundle_schema() -> None:
    from qex_archive.bundle.format import schema_path as bundle_schema
    from qex_archive.remote.index import schema_path

    assert schema_path().parent == bundle_schema().parent


@pytest.mark.slow
def test_memory_stays_bounded_over_32_mib_of_index_objects(tmp_path: Path) -> None:
    """32 MiB of index objects (2,000 runs a page): status and pull read them a page at a
    time (the reader held them all: 495 MiB)."""
    import subprocess
    import sys

    remote = tmp_path / "remote"
    (remote / "index").mkdir(parents=True)
    total = 0
    rows = 0
    while total < 32 << 20:
        bundle_id = str(uuid.uuid4())
        data = an_index(bundle_id, [a_run() for _ in range(2000)])
        (remote / "index" / f"{bundle_id}.json").write_bytes(data)
        total += len(data)
        rows += 2000
    qa.open_archive(tmp_path / "bob").close()
    script = (
        "import resource, sys, qex_archive as qa\n"
        "import fsspec, jsonschema, fastjsonschema\n"
        "from qex_archive.remote.sync import add_remote, status, pull\n"
        "def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "with qa.open_archive(sys.argv[1]) as a:\n"
        "    add_remote(a, 'lab', sys.argv[2], {})\n"
        "    base = rss()\n"
        "    p = pull(a, 'lab', qa.RunFilter(experiment='nothing'))\n"
        "    after_pull = rss()\n"
        "    s = status(a, 'lab')\n"
        "    print(len(s.only_there), len(p), base, after_pull, rss())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "bob"), str(remote)],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout.split()  # fmt: skip
    there, pulled, base, after_pull, after_status = map(int, out)
    assert there == rows and pulled == 0
    # measured: pull +4 MiB (the reader that held every index object: +81 MiB); status
    # +30 MiB, most of it its own answer (162,000 run IDs only there)
    assert after_pull - base < 24, (base, after_pull)
    assert after_status - base < 64, (base, after_status)


# -- the generic guard -------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_uuids = st.uuids().map(str)
_names = st.one_of(
    _uuids.map(lambda u: f"{u}.json"),
    st.tuples(_uuids, st.integers(2, 4)).map(lambda t: f"{t[0]}.{t[1]}.json"),
    st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters=".-_"),
            min_size=1, max_size=12).map(lambda t: f"{t}.json"),
)  # fmt: skip
_run = st.fixed_dictionaries(
    {"run_id": st.one_of(_uuids, _json), "experiment_name": st.one_of(st.just("ghz"), _json),
     "backend_name": st.just("b"), "timestamp": st.one_of(st.just(1.7e9), _json),
     "rho_sha256": st.one_of(st.just("0" * 64), _json)}
)  # fmt: skip


@st.composite
def _index_objects(draw: st.DrawFn) -> tuple[str, bytes, bytes | None]:
    name = draw(_names)
    stem = name.split(".", 1)[0]
    kind = draw(st.sampled_from(["shaped", "json", "bytes"]))
    if kind == "bytes":
        data = draw(st.binary(max_size=64))
    elif kind == "json":
        data = json.dumps(draw(_json)).encode()
    else:
        bundle_id = draw(
            st.one_of(
                st.just(stem), _uuids, st.sampled_from(["../../outside/x", "", "/etc/passwd"])
            )
        )
        value = {
            "bundle_id": bundle_id,
            "bundle": draw(st.one_of(st.just(f"bundles/{bundle_id}.qexb"), st.text(max_size=20))),
            "runs": draw(st.lists(_run, max_size=3)),
        }
        if draw(st.booleans()):
            value["pages"] = draw(st.integers(-1, 3))
        data = json.dumps(value).encode()
    bundle = draw(st.one_of(st.none(), st.binary(max_size=64), st.just(b"COPY")))
    return name, data, bundle  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(objects=st.lists(_index_objects(), min_size=1, max_size=4))
def test_arbitrary_index_objects_never_give_a_traceback_or_touch_anything_else(
    tmp_path_factory: pytest.TempPathFactory,
    objects: list[tuple[str, bytes, bytes | None]],
) -> None:
    """Arbitrary index objects (and bundles named by them: random bytes or a copy of a good
    bundle) in a directory remote: push, pull and status give no traceback, touch no file
    outside the archive and the remote, and the good bundle is still pulled."""
    base = _guard_base(tmp_path_factory)
    work = tmp_path_factory.mktemp("guard")
    site = work / "site"
    shutil.copytree(base / "site", site)
    shutil.copytree(base / "alice", work / "alice")
    remote = site / "remote"
    (good_bundle,) = (remote / "bundles").iterdir()
    for name, data, bundle in objects:
        (remote / "index" / name).write_bytes(data)
        stem = name.split(".", 1)[0]
        if bundle is not None:
            target = remote / "bundles" / f"{stem}.qexb"
            if bundle == b"COPY":
                shutil.copyfile(good_bundle, target)
            elif not target.exists():
                target.write_bytes(bundle)
    bob = work / "bob"
    assert run(bob, "remote", "add", "lab", str(remote)).exit_code == 0
    outside_before = tree(site / "outside")
    remote_before = tree(remote)
    alice_before = snapshot(work / "alice")
    commands = [
        (bob, ["remote", "status", "lab"]),
        (bob, ["pull", "lab"]),
        (bob, ["pull", "lab", "-e", "ghz"]),
        (bob, ["remote", "status", "lab", "--json"]),
        (work / "alice", ["push", "lab"]),
    ]
    for who, command in commands:
        no_traceback(run(who, *command))
    assert tree(site / "outside") == outside_before
    assert tree(remote) == remote_before  # nothing new to push: the remote is as it was
    assert snapshot(work / "alice") == alice_before
    assert bob_runs(bob) == [(base / "good.txt").read_text()]  # the good bundle, pulled
    assert sorted(p.name for p in work.iterdir()) == ["alice", "bob", "site"]


_GUARD: dict[str, Path] = {}


def _guard_base(factory: pytest.TempPathFactory) -> Path:
    """Alice's archive, the remote she pushed one good bundle to, an outside sentinel."""
    if "base" in _GUARD:
        return _GUARD["base"]
    base = factory.mktemp("guard-base")
    remote = base / "site" / "remote"
    with qa.open_archive(base / "alice") as arch:
        good = arch.record("ghz", backend="b", state=bell_state()).run_id
    assert run(base / "alice", "remote", "add", "lab", str(remote)).exit_code == 0
    assert run(base / "alice", "push", "lab").exit_code == 0
    (base / "site" / "outside").mkdir()
    with qa.open_archive(base / "eve") as eve:
        eve.record("ghz", backend="b", state=bell_state())
        qa.pack_bundle(eve, base / "site" / "outside" / "x.qexb")
    (base / "good.txt").write_text(good)
    _GUARD["base"] = base
    return base
