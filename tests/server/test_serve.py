"""`qex-archive serve` over HTTP (Starlette's test client): every route, the filters of `runs`,
keyset paging, escaping, traversal, the Host check, read-only, the time limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest

pytest.importorskip("starlette")

from starlette.testclient import TestClient

import qex_archive as qa
from qex_archive.errors import ReadOnlyArchive
from qex_archive.server import reading
from qex_archive.server.app import make_app
from qex_archive.views.html import esc

from ..cli_tools import invoke, one_line_error
from ..conftest import bell_state, snapshot
from ..filter_tools import fill

BASE = "http://127.0.0.1:8000"


def client_for(root: Path, base_url: str = BASE, **options: Any) -> TestClient:
    return TestClient(make_app(root, **options), base_url=base_url)


@pytest.fixture
def filled(archive: qa.Archive) -> dict[str, str]:
    return fill(archive)


@pytest.fixture
def client(archive: qa.Archive, filled: dict[str, str]) -> TestClient:
    return client_for(archive.root)


def runs_json(client: TestClient, query: str) -> dict[str, Any]:
    response = client.get(f"/runs.json?{query}")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def cli_runs(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    result = invoke(data_dir, "runs", "--all", "--json", *args)
    assert result.exit_code == 0, result.output
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    return runs


# -- every route --------------------------------------------------------------------------


def test_every_route_answers_with_the_security_headers(
    client: TestClient, filled: dict[str, str], archive: qa.Archive
) -> None:
    run_id = filled["ghz1024"]
    routes = {
        "/": "text/html",
        "/runs": "text/html",
        "/runs.json": "application/json",
        f"/runs/{run_id}": "text/html",
        f"/runs/{run_id[:8]}": "text/html",
        f"/runs/{run_id}.json": "application/json",
        f"/runs/{run_id}/files/bloch": "text/html",
    }
    for path, media in routes.items():
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith(media), path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "script-src" not in csp  # no script is allowed anywhere
        assert client.head(path).status_code == 200, path
        if media == "text/html" and "/files/" not in path:
            assert "<script" not in response.text


def test_the_run_page_shows_what_show_shows(
    client: TestClient, filled: dict[str, str], archive: qa.Archive
) -> None:
    run = archive.get(filled["ghz1024"])
    run.add_note("looks good")
    body = client.get(f"/runs/{run.run_id}").text
    for text in (run.run_id, "ghz", "sim", "shots=1024", "physical", "figure=2", "looks good"):
        assert esc(text) in body, text
    assert body.count('class="bloch-sphere"') == 2  # a sphere per qubit
    assert f'href="/runs/{run.run_id}/files/bloch" download' in body
    noisy = client.get(f"/runs/{filled['tomo']}").text
    assert "NOT PHYSICAL" in noisy and "Validation findings" in noisy
    assert client.get(f"/runs/{run.run_id}.json").json() == json.loads(
        invoke(archive.root, "show", "--json", run.run_id).stdout
    )


def test_a_file_is_served_as_a_download_with_its_stored_media_type(
    client: TestClient, filled: dict[str, str], archive: qa.Archive
) -> None:
    run = archive.get(filled["ghz1024"])
    bloch = next(a for a in run.artifacts if a.name == "bloch")
    response = client.get(f"/runs/{run.run_id}/files/bloch")
    assert response.content == bloch.path.read_bytes()
    assert response.headers["content-type"].startswith(bloch.media_type)
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


# -- filters: the same language and the same runs as `runs` ---------------------------------

FILTERS = [
    ("", ()),
    ("e=ghz", ("-e", "ghz")),
    ("b=hw", ("-b", "hw")),
    ("e=ghz&b=hw", ("-e", "ghz", "-b", "hw")),
    ("p=shots%3E%3D2048", ("-p", "shots>=2048")),
    ("p=shots%3D1024&p=theta%3E1", ("-p", "shots=1024", "-p", "theta>1")),
    ("p=theta%3C1+%7C+theta%3E3", ("-p", "theta<1 | theta>3")),
    ("w=purity%3E%3D0.99", ("-w", "purity>=0.99")),
    ("t=figure", ("-t", "figure")),
    ("t=figure%3D2", ("-t", "figure=2")),
    ("valid=1", ("--valid",)),
    ("valid=0", ("--invalid",)),
    ("since=1d", ("--since", "1d")),
    ("until=1d", ("--until", "1d")),
    ("sort=shots", ("--sort", "shots")),
    ("sort=purity&reverse=1", ("--sort", "purity", "--reverse")),
    ("reverse=1", ("--reverse",)),
    ("e=&b=&p=", ()),  # an empty field of the form is no filter
]


@pytest.mark.parametrize(("query", "options"), FILTERS)
def test_a_filter_selects_what_runs_selects(
    client: TestClient, archive: qa.Archive, query: str, options: tuple[str, ...]
) -> None:
    expected = cli_runs(archive.root, *options)
    assert runs_json(client, query + "&limit=1000")["runs"] == expected
    page = client.get(f"/?{query}").text
    for run in expected:
        assert f'href="/runs/{run["run_id"]}"' in page
    assert page.count('<a href="/runs/') == len(expected)


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("p=shots", ("-p", "shots")),
        ("p=x%3E%5B1%5D", ("-p", "x>[1]")),
        ("since=yesterday-ish", ("--since", "yesterday-ish")),
        ("sort=a%22b", ("--sort", 'a"b')),
        ("t=", ()),
    ],
)
def test_a_bad_filter_is_a_400_page_with_the_cli_message(
    client: TestClient, archive: qa.Archive, query: str, options: tuple[str, ...]
) -> None:
    if not options:  # an empty tag field is simply no filter
        assert client.get(f"/?{query}").status_code == 200
        return
    result = invoke(archive.root, "runs", *options)
    one_line_error(result)
    message = result.output.strip().removeprefix("Error: ")
    response = client.get(f"/?{query}")
    assert response.status_code == 400
    assert esc(message) in response.text
    as_json = client.get(f"/runs.json?{query}")
    assert as_json.status_code == 400 and as_json.json() == {"error": message}


@pytest.mark.parametrize(
    "query",
    [
        "valid=yes",
        "limit=0",
        "limit=1001",
        "limit=x",
        "before=abc",
        "before=nan,x",
        "e=a&e=b",
        "color=red",
        "reverse=1&before=1.0,x",
        "sort=shots&before=1.0,x",
    ],
)
def test_bad_page_parameters_are_refused_in_one_line(client: TestClient, query: str) -> None:
    response = client.get(f"/?{query}")
    assert response.status_code == 400, query
    assert response.text.count('class="error"') == 1


def test_a_filter_matching_nothing_says_which_key_no_run_has(client: TestClient) -> None:
    answer = runs_json(client, "p=shotz%3D1")
    assert answer["runs"] == [] and "shotz" in answer["hints"][0]
    assert "no runs match" in client.get("/?p=shotz%3D1").text


# -- keyset paging --------------------------------------------------------------------------


@pytest.fixture
def many(archive: qa.Archive) -> qa.Archive:
    """53 runs, some sharing a timestamp (the cursor's run ID breaks the tie)."""
    with archive.batch():
        for i in range(53):
            archive.record(
                "sweep" if i % 3 else "other",
                params={"i": i},
                backend="sim",
                state=bell_state(),
                timestamp=1_700_000_000 + i // 4,
                renderers=[],
            )
    return archive


def walk(client: TestClient, path: str) -> list[str]:
    seen: list[str] = []
    while path:
        answer = client.get(path).json()
        seen.extend(run["run_id"] for run in answer["runs"])
        path = answer["next"]
        assert len(seen) < 1000
    return seen


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("", ()),
        ("reverse=1", ("--reverse",)),
        ("e=sweep", ("-e", "sweep")),
        ("e=sweep&reverse=1&p=i%3E5", ("-e", "sweep", "--reverse", "-p", "i>5")),
    ],
)
@pytest.mark.parametrize("size", [1, 4, 7, 100])
def test_paging_walks_every_run_once_in_order(
    many: qa.Archive, query: str, options: tuple[str, ...], size: int
) -> None:
    client = client_for(many.root)
    expected = [run["run_id"] for run in cli_runs(many.root, *options)]
    assert walk(client, f"/runs.json?{query}&limit={size}") == expected


def test_the_html_page_links_the_next_page(many: qa.Archive) -> None:
    client = client_for(many.root)
    first = client.get("/?limit=50").text
    assert first.count('<a href="/runs/') == 50
    start = first.index('rel="next" href="') + len('rel="next" href="')
    link = first[start : first.index('"', start)].replace("&amp;", "&")
    assert "before=" in link
    assert client.get(link).text.count('<a href="/runs/') == 3
    assert 'rel="next"' not in client.get(link).text


# -- hostile values -------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"


def test_hostile_names_params_tags_and_notes_are_escaped(archive: qa.Archive) -> None:
    run = archive.record(
        HOSTILE,
        params={HOSTILE: HOSTILE, "n": 1},
        backend=HOSTILE,
        state=bell_state(),
        metadata={"x": HOSTILE},
    )
    run.set_tag("<b>x</b>", HOSTILE)
    run.add_note(HOSTILE)
    client = client_for(archive.root)
    bodies = [
        client.get("/").text,
        client.get(f"/runs/{run.run_id}").text,
        client.get("/?" + urlencode({"e": HOSTILE})).text,
        client.get("/?" + urlencode({"p": f"{HOSTILE}=1", "t": HOSTILE})).text,
    ]
    for body in bodies:
        assert "<script" not in body and "<img" not in body
        assert "onerror=alert" not in body or "&lt;img" in body
    assert esc(HOSTILE) in bodies[0] and esc(HOSTILE) in bodies[1]
    assert esc("<b>x</b>") in bodies[1]


# -- traversal and unknown paths ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "statuses"),
    [
        ("/files/...", {400}),
        ("/files/..%2F..%2Fqex.db", {400, 404}),
        ("/files/..%5Cqex.db", {400}),
        ("/files/%2e%2e", {400}),
        ("/files/nope", {404}),
        ("/files/bloch%00", {400}),
    ],
)
def test_traversal_in_a_file_name_is_refused(
    client: TestClient, filled: dict[str, str], tail: str, statuses: set[int]
) -> None:
    response = client.get(f"/runs/{filled['ghz1024']}{tail}")
    assert response.status_code in statuses, (tail, response.status_code)
    assert "SQLite" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/nowhere", 404),
        ("/runs/0000dead", 404),
        ("/runs/0000dead.json", 404),
        ("/runs/..%2F..%2Fetc%2Fpasswd", 404),
        ("/runs/%00", 400),
        ("/runs/0000dead/files/bloch", 404),
        ("/static/../qex.db", 404),
    ],
)
def test_unknown_paths_and_runs_are_one_line_pages(
    client: TestClient, path: str, status: int
) -> None:
    response = client.get(path)
    assert response.status_code == status, path
    if path.endswith(".json"):
        assert list(response.json()) == ["error"]
    else:
        assert response.text.count('class="error"') == 1


# -- the rules: Host, read-only, live, bounded ----------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "ok"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://LOCALHOST:8000", True),
        ("http://127.0.0.1:8001", False),
        ("http://evil.example:8000", False),
        ("http://evil.example", False),
        ("http://127.0.0.1.evil.example:8000", False),
    ],
)
def test_a_foreign_host_header_is_refused(
    archive: qa.Archive, filled: dict[str, str], base_url: str, ok: bool
) -> None:
    response = client_for(archive.root, base_url).get("/")
    assert response.status_code == (200 if ok else 400)


def test_a_non_loopback_bind_answers_its_own_name_only(archive: qa.Archive) -> None:
    app_client = client_for(archive.root, "http://192.0.2.7:9000", host="192.0.2.7", port=9000)
    assert app_client.get("/").status_code == 200
    assert (
        client_for(archive.root, "http://localhost:9000", host="192.0.2.7", port=9000)
        .get("/")
        .status_code
        == 400
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_nothing_but_get_and_head_is_served_and_the_archive_is_unchanged(
    client: TestClient, archive: qa.Archive, filled: dict[str, str], method: str
) -> None:
    before = snapshot(archive.root)
    for path in ("/", "/runs.json", f"/runs/{filled['ghz1024']}", "/nowhere"):
        response = client.request(method, path, content=b"x=1")
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == "GET, HEAD"
    client.get("/")
    client.get(f"/runs/{filled['ghz1024']}")
    assert snapshot(archive.root) == before


def test_the_served_archive_is_opened_read_only(client: TestClient) -> None:
    served = client.app.state.served  # type: ignore[attr-defined]
    with served.reading() as opened, pytest.raises(ReadOnlyArchive):
        opened.record("x", params={}, backend="b", state=bell_state())


def test_runs_recorded_meanwhile_show_on_reload(
    client: TestClient, archive: qa.Archive, filled: dict[str, str]
) -> None:
    assert len(runs_json(client, "")["runs"]) == len(filled)
    with qa.open_archive(archive.root) as writer:
        new = writer.record("late", params={}, backend="sim", state=bell_state(), renderers=[])
    assert runs_json(client, "")["runs"][0]["run_id"] == new.run_id
    assert client.get(f"/runs/{new.run_id}").status_code == 200


def test_a_query_over_the_time_limit_is_a_clear_page(
    archive: qa.Archive, filled: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "PROGRESS_STEPS", 1)
    client = client_for(archive.root, time_limit=0.0)
    for path in ("/?p=shots%3E1", "/runs.json"):
        response = client.get(path)
        assert response.status_code == 503, response.text
        assert "longer than 0 s" in response.text
    assert client_for(archive.root).get("/").status_code == 200  # the next one is fine


# -- the command ----------------------------------------------------------------------------


def test_serve_without_the_extra_names_the_install_command(
    archive: qa.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "starlette", None)
    one_line_error(invoke(archive.root, "serve"), "pip install 'qex-archive[serve]'")


def test_importing_qex_archive_never_imports_starlette() -> None:
    code = (
        "import sys, qex_archive, qex_archive.cli as c; c.load_command_modules(); "
        "qex_archive.open_archive; print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('starlette', 'uvicorn')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_serve_runs_uvicorn_and_warns_off_loopback(
    archive: qa.Archive, monkeypatch: pytest.MonkeyPatch, host: str, warned: bool
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    result = invoke(archive.root, "serve", "--host", host, "--port", "8123")
    assert result.exit_code == 0, result.output
    assert calls == [{"host": host, "port": 8123, "log_level": "warning"}]
    assert ("anyone who can reach" in result.output) is warned
    assert "read-only" in result.output


def test_serve_refuses_a_missing_archive(data_dir: Path) -> None:
    one_line_error(invoke(data_dir, "serve"), "no archive at")
    assert not data_dir.exists()


def test_the_filter_builder_is_shared_with_the_cli() -> None:
    from qex_archive.cli import build_filter
    from qex_archive.store.query import filter_from_texts

    args = (
        "ghz",
        "hw",
        "2026-11-26T14:00",
        "2026-12-01",
        ["shots>=1", "a=1 | b=2"],
        ["purity>=0.9"],
        True,
        ["f=2"],
    )
    assert build_filter(*args) == filter_from_texts(*args)
    assert np.isfinite(filter_from_texts(since="3d").since or np.nan)
