"""One filter vocabulary: every command and API that selects runs takes the same filters,
meaning the same thing, and refuses (in one line) what it cannot honour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import qex_archive as qa
from qex_archive.cli import cli

from .cli_tools import invoke
from .conftest import bell_state, snapshot
from .filter_tools import fill, listed

SELECTING_COMMANDS = [
    "runs",
    "pack",
    "export",
    "report",
    "compare",
    "tag",
    "rm",
    "import",
    "push",
    "pull",
]
SHARED_OPTIONS = [
    "-e, --experiment",
    "-b, --backend",
    "--since",
    "--until",
    "-p, --param",
    "-w, --where",
    "-t, --tag",
    "--valid / --invalid",
]
# filter sets, as typed after a command, and the same selection as Archive.runs keywords
FILTERS: list[tuple[list[str], dict[str, object]]] = [
    (["-e", "ghz", "-t", "figure=2"], {"experiment": "ghz", "tags": {"figure": "2"}}),
    (["-t", "figure"], {"tags": {"figure": None}}),
    (["-p", "shots>=2048"], {"where": {"shots": {">=": 2048}}}),
    (["--invalid"], {"valid": False}),
    (
        ["-w", "purity>=0.9", "-b", "sim"],
        {"meta": {"validation.purity": {">=": 0.9}}, "backend": "sim"},
    ),
    (
        ["-e", "rabi", "-p", "theta<0.2 | theta>3"],
        {"experiment": "rabi", "where": [{"theta": {"<": 0.2}}, {"theta": {">": 3}}]},
    ),
    # meta= takes the shortcuts of -w
    (["-w", "purity>=0.9", "-b", "sim"], {"meta": {"purity": {">=": 0.9}}, "backend": "sim"}),
    (["-w", "is_valid=false"], {"meta": {"is_valid": False}}),
]


def one_line_error(result: Result, fragment: str) -> None:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    with qa.open_archive(tmp_path / "source") as archive:
        fill(archive)
    return tmp_path / "source"


@pytest.fixture
def bundle(source: Path, tmp_path: Path) -> Path:
    with qa.open_archive(source) as archive:
        qa.pack_bundle(archive, tmp_path / "all.qexb")
    return tmp_path / "all.qexb"


@pytest.mark.parametrize("command", SELECTING_COMMANDS)
def test_every_selecting_command_takes_the_shared_filters(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    for option in SHARED_OPTIONS:
        assert option in result.stdout, f"{command} --help lacks {option}"


@pytest.mark.parametrize(
    "args",
    [
        ["pack", "-o", "x.qexb", "-e", "ghz", "--sort", "purity"],
        ["report", "-e", "ghz", "--limit", "3"],
        ["tag", "-e", "ghz", "x=", "--sort", "time"],
        ["rm", "-e", "ghz", "--oldest-first"],
        ["import", "x.qexb", "--reverse"],
        ["pull", "lab", "--offset", "2"],
        ["export", "-o", "x.csv", "--limit", "3"],
    ],
)
def test_an_order_option_a_command_cannot_honour_is_refused_in_one_line(
    source: Path, args: list[str]
) -> None:
    before = snapshot(source)
    result = invoke(source, *args)
    one_line_error(result, f"'{args[0]}' cannot honour")
    assert snapshot(source) == before


@pytest.mark.parametrize(("options", "keywords"), FILTERS)
def test_import_takes_exactly_the_runs_the_filters_select(
    source: Path, bundle: Path, tmp_path: Path, options: list[str], keywords: dict[str, object]
) -> None:
    wanted = listed(source, *options)
    with qa.open_archive(source) as archive:
        assert wanted == sorted(run.run_id for run in archive.runs(**keywords))  # type: ignore[arg-type]
    assert 0 < len(wanted) < 8
    target = tmp_path / "target"
    result = invoke(target, "import", str(bundle), *options)
    assert result.exit_code == 0, result.output
    assert f"imported {len(wanted)} run" in result.stdout  # "1 run", "2 runs"
    assert f"left out {8 - len(wanted)} runs the filters do not select" in result.stdout
    assert listed(target) == wanted
    # the files of the runs left out stayed out
    names = sorted(path.name for path in (target / "results").iterdir())
    assert names == sorted(f"{run_id}_rho.npy" for run_id in wanted)
    assert not (target / ".staging").exists() or not any((target / ".staging").iterdir())
    # importing again changes nothing
    before = snapshot(target)
    again = invoke(target, "import", str(bundle), *options)
    assert again.exit_code == 0 and "nothing changed" in again.stdout, again.output
    assert snapshot(target) == before
    # unpack into a new archive selects the same runs
    result = CliRunner().invoke(cli, ["unpack", str(bundle), str(tmp_path / "new"), *options])
    assert result.exit_code == 0, result.output
    assert listed(tmp_path / "new") == wanted


def test_import_bundle_with_a_selection_is_all_or_nothing_and_reports_what_it_left_out(
    source: Path, bundle: Path, tmp_path: Path
) -> None:
    selection = qa.RunFilter.build(experiment="ghz", tags={"figure": None})
    with qa.open_archive(source) as archive:
        wanted = sorted(archive.run_ids(selection))
    with qa.open_archive(tmp_path / "target") as target:
        dry = qa.import_bundle(target, bundle, selection=selection, dry_run=True)
        assert sorted(dry.imported) == wanted and target.count() == 0
        report = qa.import_bundle(target, bundle, selection=selection)
        assert sorted(report.imported) == wanted
        assert len(report.not_selected) == 8 - len(wanted)
        assert report.to_dict()["not_selected"] == report.not_selected
        assert sorted(target.run_ids(qa.RunFilter())) == wanted
        # the imported runs keep their tags; a later import of the rest fills in the others
        assert target.runs(tags={"figure": "3"})[0].tags == {"figure": "3"}
        rest = qa.import_bundle(target, bundle)
        assert len(rest.imported) == 8 - len(wanted) and sorted(rest.identical) == wanted
        # a selection that matches nothing imports nothing, and says so
        none = qa.import_bundle(target, bundle, selection=qa.RunFilter(experiment="nope"))
        assert none.imported == [] and len(none.not_selected) == 8


def test_a_conflict_outside_the_selection_does_not_stop_the_import(
    source: Path, bundle: Path, tmp_path: Path
) -> None:
    with qa.open_archive(source) as archive:
        tomo = archive.runs(experiment="tomo")[0].run_id
        ghz = sorted(archive.run_ids(qa.RunFilter(experiment="ghz")))
    with qa.open_archive(tmp_path / "target") as target:
        qa.import_bundle(target, bundle, selection=qa.RunFilter(experiment="tomo"))
        # the same ID here with other content
        target.conn.execute("UPDATE runs SET params = '{\"shots\": 1}' WHERE run_id = ?", [tomo])
        with pytest.raises(qa.BundleError):
            qa.import_bundle(target, bundle)
        report = qa.import_bundle(target, bundle, selection=qa.RunFilter(experiment="ghz"))
        assert sorted(report.imported) == ghz and report.conflicts == []


def test_import_refuses_a_selection_that_is_not_a_filter(bundle: Path, tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "target") as target, pytest.raises(qa.InvalidInput):
        qa.import_bundle(target, bundle, selection={"experiment": "ghz"})  # type: ignore[arg-type]


def test_pack_bundle_takes_the_selection_keywords_of_runs(source: Path, tmp_path: Path) -> None:
    keywords: list[dict[str, object]] = [
        {"tags": {"figure": "2"}},
        {"valid": False},
        {"meta": {"validation.purity": {">=": 0.99}}, "experiment": "ghz"},
        {"where": [{"shots": 2048}, {"theta": 0.1}]},
    ]
    with qa.open_archive(source) as archive:
        for number, chosen in enumerate(keywords):
            wanted = sorted(run.run_id for run in archive.runs(**chosen))  # type: ignore[arg-type]
            report = qa.pack_bundle(archive, tmp_path / f"{number}.qexb", **chosen)  # type: ignore[arg-type]
            packed = sorted(run["run_id"] for run in qa.read_bundle(report.path).runs)
            assert packed == wanted and 0 < len(wanted) < 8, chosen
        # a prepared selection gives the same bundle, byte for byte
        selection = qa.RunFilter.build(tags={"figure": "2"})
        qa.pack_bundle(archive, tmp_path / "same.qexb", selection=selection)
        assert (tmp_path / "same.qexb").read_bytes() == (tmp_path / "0.qexb").read_bytes()
        with pytest.raises(qa.InvalidInput, match="not both"):
            qa.pack_bundle(archive, tmp_path / "x.qexb", valid=True, selection=selection)
        with pytest.raises(qa.InvalidInput, match="no runs match"):
            qa.pack_bundle(archive, tmp_path / "x.qexb", tags={"figure": "9"})


def test_tag_takes_filters_as_well_as_ids(source: Path) -> None:
    wanted = listed(source, "-e", "ghz", "-p", "shots>=2048")
    result = invoke(source, "tag", "-e", "ghz", "-p", "shots>=2048", "hot=")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == len(wanted) == 2
    assert listed(source, "-t", "hot") == wanted
    # IDs and filters: the named runs the filters also select
    everything = listed(source)
    result = invoke(source, "tag", *everything, "-t", "figure=2", "two=yes")
    assert result.exit_code == 0, result.output
    assert listed(source, "-t", "two=yes") == listed(source, "-t", "figure=2")
    # taking a tag off a selection
    result = invoke(source, "tag", "-t", "hot", "--remove", "hot")
    assert result.exit_code == 0 and listed(source, "-t", "hot") == []


def test_tag_refuses_when_nothing_is_selected(source: Path) -> None:
    before = snapshot(source)
    one_line_error(invoke(source, "tag", "figure=9"), "name at least one run or give filters")
    one_line_error(invoke(source, "tag", "-e", "nope", "figure=9"), "no runs match")
    assert snapshot(source) == before


def test_archive_tag_tags_a_selection(source: Path) -> None:
    with qa.open_archive(source) as archive:
        tagged = archive.tag(qa.RunFilter(experiment="rabi"), {"sweep": "a"})
        assert tagged == sorted(r.run_id for r in archive.runs(experiment="rabi"))
        assert sorted(r.run_id for r in archive.runs(tags={"sweep": "a"})) == tagged
        archive.tag(qa.RunFilter(experiment="rabi"), remove=["sweep"])
        assert archive.runs(tags={"sweep": None}) == []
        ghz = archive.runs(experiment="ghz")[0]
        assert archive.tag([ghz.run_id[:8]], {"one": ""}) == [ghz.run_id]


def test_rm_with_filters_lists_and_asks(source: Path) -> None:
    wanted = listed(source, "-e", "rabi", "-b", "hw")
    before = snapshot(source)
    declined = invoke(source, "rm", "-e", "rabi", "-b", "hw", input="n\n")
    assert declined.exit_code == 1 and snapshot(source) == before
    assert "Delete 3 runs?" in declined.stderr
    for run_id in wanted:
        assert run_id[:8] in declined.stderr  # ID, time and experiment of each
    assert declined.stderr.count("rabi") >= 3
    accepted = invoke(source, "rm", "-e", "rabi", "-b", "hw", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert sorted(line.split()[1] for line in accepted.stdout.splitlines()) == wanted
    assert listed(source, "-e", "rabi") == [] and len(listed(source)) == 5


def test_rm_yes_skips_the_question_and_ids_with_filters_intersect(source: Path) -> None:
    everything = listed(source)
    invalid = listed(source, "--invalid")
    result = invoke(source, "rm", *everything[:8], "--invalid", "--yes")
    assert result.exit_code == 0, result.output
    assert "Delete" not in result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == invalid
    assert listed(source) == sorted(set(everything) - set(invalid))


def test_rm_without_ids_or_filters_is_refused(source: Path) -> None:
    before = snapshot(source)
    one_line_error(invoke(source, "rm", "--yes"), "name the runs to delete or give filters")
    one_line_error(invoke(source, "rm", "-e", "nope", "--yes"), "no runs match")
    assert snapshot(source) == before


def test_compare_takes_filters(source: Path) -> None:
    result = invoke(source, "compare", "-e", "ghz", "-b", "sim", "--json")
    assert result.exit_code == 0, result.output
    compared = json.loads(result.stdout)["runs"]
    assert sorted(run["run_id"] for run in compared) == listed(source, "-e", "ghz", "-b", "sim")
    one_line_error(invoke(source, "compare", "-e", "tomo"), "1 selected")


def test_export_and_report_take_the_same_filters(source: Path, tmp_path: Path) -> None:
    wanted = listed(source, "-t", "figure=2", "--valid")
    result = invoke(source, "export", "-t", "figure=2", "--valid", "-o", str(tmp_path / "f.jsonl"))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert sorted(row["run_id"] for row in rows) == wanted
    page = tmp_path / "f.html"
    result = invoke(source, "report", "-t", "figure=2", "--valid", "-o", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert all(run_id[:8] in text for run_id in wanted)
    assert all(run_id[:8] not in text for run_id in set(listed(source)) - set(wanted))


# nested params, a key with a dot of its own (it wins over the nested path) and hostile keys
NESTED_PARAMS: list[dict[str, object]] = [
    {"theta": {"value": 0.3, "unit": "rad"}},
    {"theta": {"value": 0.05, "unit": "rad"}},
    {"theta.value": 0.2, "theta": {"value": 0.01}},
    {"theta": 0.5},
    {"mw.freq": 5.1},
    {"odd": {"it's": 1, "a]b[0]": 2, "$": 3, "'); DROP TABLE runs; --": 4}},
]
# as typed after a command, the same as Archive.runs keywords, and the runs selected
NESTED_FILTERS: list[tuple[list[str], dict[str, object], list[int]]] = [
    (["-p", "theta.value>0.1"], {"where": {"theta.value": {">": 0.1}}}, [0, 2]),
    (["-p", "theta.value in [0.05, 0.2]"], {"where": {"theta.value": {"in": [0.05, 0.2]}}}, [1, 2]),
    (
        ["-p", "theta.unit=rad", "-p", "theta.value<0.1"],
        {"where": {"theta.unit": "rad", "theta.value": {"<": 0.1}}},
        [1],
    ),
    (["-p", "mw.freq>5"], {"where": {"mw.freq": {">": 5}}}, [4]),
    (["-p", "odd.it's=1"], {"where": {"odd.it's": 1}}, [5]),
    (["-p", "odd.a]b[0]=2 | odd.$=99"], {"where": [{"odd.a]b[0]": 2}, {"odd.$": 99}]}, [5]),
    (["-p", "odd.'); DROP TABLE runs; --=4"], {"where": {"odd.'); DROP TABLE runs; --": 4}}, [5]),
]


@pytest.fixture
def nested_source(tmp_path: Path) -> tuple[Path, list[str]]:
    with qa.open_archive(tmp_path / "nested") as archive:
        ids = [
            archive.record(
                f"n{i}", params=params, backend="b", state=bell_state(), timestamp=1e9 + i
            ).run_id
            for i, params in enumerate(NESTED_PARAMS)
        ]
        qa.pack_bundle(archive, tmp_path / "nested.qexb")
    return tmp_path / "nested", ids


@pytest.mark.parametrize(("options", "keywords", "expected"), NESTED_FILTERS)
def test_dotted_params_select_the_same_runs_in_runs_python_and_import(
    nested_source: tuple[Path, list[str]],
    tmp_path: Path,
    options: list[str],
    keywords: dict[str, object],
    expected: list[int],
) -> None:
    source, ids = nested_source
    wanted = sorted(ids[i] for i in expected)
    assert listed(source, *options) == wanted
    with qa.open_archive(source) as archive:
        assert sorted(run.run_id for run in archive.runs(**keywords)) == wanted  # type: ignore[arg-type]
    target = tmp_path / "target"
    result = invoke(target, "import", str(tmp_path / "nested.qexb"), *options)
    assert result.exit_code == 0, result.output
    assert listed(target) == wanted


def test_runs_sorts_by_a_dotted_param(nested_source: tuple[Path, list[str]]) -> None:
    source, ids = nested_source
    result = invoke(source, "runs", "--json", "--sort", "theta.value")
    assert result.exit_code == 0, result.output
    order = [run["run_id"] for run in json.loads(result.stdout)]
    assert order[:3] == [ids[1], ids[2], ids[0]]  # 0.05, 0.2 (its own key), 0.3
    with qa.open_archive(source) as archive:
        assert [run.run_id for run in archive.runs(sort="theta.value")] == order


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        (
            ["-p", "theta.valu>0.1"],
            "no run has param 'theta.valu'; keys seen: theta.unit, theta.value",
        ),
        (
            ["-w", "validation.purty>=0.9"],
            "no run has metadata 'validation.purty'; paths seen: validation.findings, "
            "validation.is_valid, validation.max_eigenvalue",
        ),
        (["-w", "fridge=2"], "no run has metadata 'fridge'; paths seen: context, qex, state"),
    ],
)
def test_runs_names_the_keys_it_saw_for_a_param_or_metadata_path_no_run_has(
    nested_source: tuple[Path, list[str]], options: list[str], hint: str
) -> None:
    source, _ = nested_source
    for output in ([], ["--json"]):
        result = invoke(source, "runs", *options, *output)
        assert result.exit_code == 0, result.output
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(hint), line
    if options == ["-w", "fridge=2"]:
        assert line.endswith("validation (or the shortcuts purity, entropy, trace, is_valid, dims)")
    # a path some run has, and that selects nothing, gets no hint
    result = invoke(source, "runs", "-w", "validation.purity>2")
    assert result.exit_code == 0 and result.stderr == "", result.stderr
