"""Generic guards: hostile text on the command line and hand-made rows in the database. Whatever
is drawn, no command shows a traceback, exits with anything but 0, 1 or 2, changes an archive
it only reads, or reads or deletes a file outside the archive."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qex_archive as qa
from qex_archive.bundle import pack_bundle
from qex_archive.cli import cli

from ..conftest import bell_state, snapshot

READING = ["runs", "show", "check", "inspect", "verify", "plugins"]

hostile_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "\x1b]0;title\x07",
            "\x1b[2J",
            "\u202e",
            "\udcff",
            "\ud800",
            "\U0010ffff",
            "\x00",
            "-1",
            "0",
            str(10**20),
            "1e400",
            "inf",
            "nan",
            "NaN",
            "-inf",
            "[" * 3000 + "]" * 3000,
            '{"a":' * 200 + "1" + "}" * 200,
            "../../etc/passwd",
            "/etc/passwd",
            "qex.db",
            "results/../qex.db",
            "3d",
            "1900-01-01",
            "9999-12-31T23:59:59",
            "shots=10",
            "theta>=0.1",
            "x!=null",
            "a=" + str(10**30),
            "",
            " ",
        ]
    ),
)

OPTIONS = {
    "runs": ["-e", "-b", "--since", "--until", "-p", "-n", "--offset"],
    "show": [],
    "check": [],
    "inspect": ["--max-members", "--max-total-size", "--max-json-size", "--max-ratio"],
    "verify": ["--max-file-size", "--max-json-values"],
    "plugins": [],
    "record": ["-e", "-b", "-p", "-m", "--dims", "--timestamp"],
    "rm": [],
    "render": ["-r"],
    "gc": [],
    "pack": ["-e", "-p", "--since", "--note", "-o"],
}
FLAGS = {
    "runs": ["--json", "--jsonl", "--all", "--oldest-first"],
    "show": ["--json"],
    "check": ["--json", "--strict", "--no-checksums"],
    "inspect": ["--json"],
    "verify": ["--json"],
    "plugins": ["--json", "--all"],
    "record": ["--strict", "--json"],
    "rm": ["--yes"],
    "render": ["--force"],
    "gc": ["--dry-run"],
    "pack": ["--no-artifacts", "--json"],
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    with qa.open_archive(root / "qex_data") as arch:
        arch.record("ghz", params={"shots": 10, "theta": 0.5}, backend="b", state=bell_state())
        arch.record("ghz", params={"shots": 20}, backend="aer", state=np.eye(2) / 2)
        pack_bundle(arch, root / "b.qexb")
    np.save(root / "state.npy", np.eye(2) / 2)
    return root


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(OPTIONS)))
    args = [command]
    for _ in range(draw(st.integers(0, 3))):
        if OPTIONS[command] and draw(st.booleans()):
            args += [draw(st.sampled_from(OPTIONS[command])), draw(hostile_text)]
        elif FLAGS[command] and draw(st.booleans()):
            args.append(draw(st.sampled_from(FLAGS[command])))
        else:
            args.append(draw(hostile_text))
    return args


def _with_files(args: list[str], root: Path) -> list[str]:
    """Put real paths where the commands need one, so that they get past argument parsing."""
    command = args[0]
    if command in ("inspect", "verify"):
        return [command, str(root / "b.qexb"), *args[1:]]
    if command == "record":
        return [command, str(root / "state.npy"), *args[1:]]
    if command == "pack" and "-o" not in args:
        return [*args, "-o", str(root / "out" / "p.qexb")]
    return args


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=command_lines())
def test_hostile_command_lines_never_crash(
    sample: Path, tmp_path_factory: pytest.TempPathFactory, args: list[str]
) -> None:
    work = tmp_path_factory.mktemp("argv")
    data = work / "qex_data"
    (work / "out").mkdir()
    shutil.copytree(sample / "qex_data", data)
    for name in ("b.qexb", "state.npy"):
        shutil.copy(sample / name, work / name)
    before = snapshot(data)
    argv = _with_files(args, work)
    result = CliRunner().invoke(cli, ["--data-dir", str(data), *argv], input="n\n")
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        argv,
        result.output,
        result.exc_info,
    )
    assert result.exit_code in (0, 1, 2), (argv, result.output)
    assert "Traceback" not in result.output
    if args[0] in READING:
        assert snapshot(data) == before, argv
    if not any("--json" in a for a in argv):
        assert "\x1b" not in result.output, (argv, result.output)


# -- hand-made rows, with sentinel files beside and above the archive ----------------------

paths = st.one_of(
    st.sampled_from(
        [
            "qex.db",
            "qex.db-wal",
            "../beside.npy",
            "../../above.npy",
            "{abs}",
            "results",
            "results/",
            "results/.",
            "results/..",
            "results/../qex.db",
            "results/sub",
            "results/sub/x.npy",
            "results\\x.npy",
            "artifacts/x.html",
            "results/link.npy",
            "results/.tmp-1-a_rho.npy",
            "",
        ]
    ),
    st.text(max_size=20).map(lambda t: f"results/{t}"),
)
json_texts = st.one_of(
    st.sampled_from(['{"a": 1}', "{}", "[]", "null", "not json", '{"a": NaN}', "1e999", ""]),
    st.text(max_size=20),
    st.none(),
)
timestamps = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=10),
    st.none(),
)
ids = st.one_of(
    st.just("abcdef01-0000-4000-8000-000000000001"),
    st.text(min_size=1, max_size=12),
)


@st.composite
def hand_rows(draw: st.DrawFn) -> list[tuple[object, ...]]:
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        rows.append(
            (
                draw(ids),
                draw(st.one_of(st.text(max_size=10), st.just("handmade"))),
                draw(json_texts),
                draw(st.one_of(st.text(max_size=10), st.just("b"))),
                draw(timestamps),
                draw(paths),
                draw(json_texts),
                draw(st.one_of(st.none(), paths)),
            )
        )
    return rows


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=hand_rows())
def test_hand_made_rows_never_make_qex_touch_a_foreign_file(
    sample: Path, tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[object, ...]]
) -> None:
    work = tmp_path_factory.mktemp("rows")
    data = work / "nest" / "qex_data"
    shutil.copytree(sample / "qex_data", data)
    (data / "results" / "sub").mkdir()
    beside = work / "nest" / "beside.npy"
    above = work / "above.npy"
    shutil.copy(sample / "state.npy", beside)
    shutil.copy(sample / "state.npy", above)
    (data / "results" / "link.npy").symlink_to(above)
    sentinels = {p: _digest(p) for p in (beside, above)}
    conn = sqlite3.connect(data / "qex.db")
    inserted = []
    for run_id, experiment, params, backend, when, rho, metadata, artifact in rows:
        rho_path = str(rho).replace("{abs}", str(above))
        try:
            with conn:
                conn.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, experiment, params or "{}", backend, when or 0, rho_path, metadata),
                )
                if artifact is not None:
                    conn.execute(
                        "INSERT INTO artifacts (run_id, artifact_name, artifact_path, "
                        "artifact_type) VALUES (?, 'page', ?, 'text/html')",
                        (run_id, str(artifact).replace("{abs}", str(above))),
                    )
            inserted.append(str(run_id))
        except (sqlite3.Error, UnicodeEncodeError):
            continue  # not storable at all: nothing to test with this row
    conn.close()
    runner = CliRunner()

    def run(*args: str) -> None:
        result = runner.invoke(cli, ["--data-dir", str(data), *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            rows,
            result.exc_info,
        )
        assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output, (args, rows)

    for args in (["runs"], ["runs", "--json"], ["check"], ["check", "--json"]):
        run(*args)
    for run_id in inserted:
        prefix = run_id.strip()
        if prefix:
            run("show", prefix)
            run("show", "--json", prefix)
            run("render", prefix, "--force")
            run("pack", "-o", str(work / "p.qexb"), prefix)
    run("pack", "-o", str(work / "all.qexb"))
    run("gc")
    for run_id in inserted:
        if run_id.strip():
            run("rm", run_id.strip(), "--yes")
    run("gc")
    for sentinel, before in sentinels.items():
        assert sentinel.exists() and _digest(sentinel) == before, rows
    assert (data / "qex.db").is_file() and (data / "results" / "sub").is_dir()
    with qa.open_archive(data) as arch:  # the real runs left (a prefix may have named one)
        for real in arch.runs(experiment="ghz"):
            assert real.rho.shape in ((4, 4), (2, 2))
