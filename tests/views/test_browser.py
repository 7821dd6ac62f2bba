"""The Bloch page in a real headless Chromium, opened from a file:// URL, networking blocked."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.demo import fill_demo_archive

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "bloch-demo.png"


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (see .ci/run)")
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()


def open_page(browser, path: Path):  # type: ignore[no-untyped-def]
    """Open ``path`` with every request recorded and anything but the page itself refused."""
    context = browser.new_context(viewport={"width": 900, "height": 700})
    url = path.resolve().as_uri()
    requests: list[str] = []
    problems: list[str] = []

    def route(route) -> None:  # type: ignore[no-untyped-def]
        requests.append(route.request.url)
        if route.request.url == url:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if message.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    page.wait_for_load_state("load")
    return context, page, requests, problems


def distinct_colours(png: bytes) -> int:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 24)
    return len(colours or [])


@pytest.mark.parametrize("n_qubits", [1, 2, 3])
def test_bloch_page_in_chromium(browser, tmp_path: Path, n_qubits: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(n_qubits)
    g = rng.normal(size=(2**n_qubits, 2)) + 1j * rng.normal(size=(2**n_qubits, 2))
    rho = g @ g.conj().T
    with qa.open_archive(tmp_path / "qex_data") as arch:
        path = arch.record("browser", backend="b", state=rho / np.trace(rho)).artifacts[0].path
    context, page, requests, problems = open_page(browser, path)
    try:
        assert page.locator("svg.bloch-sphere").count() == n_qubits
        assert requests == [path.resolve().as_uri()], "the page fetched something"
        assert problems == []
        shot = page.screenshot(full_page=True)
        assert distinct_colours(shot) > 20, "the screenshot is blank"
        assert "browser" in page.title()
    finally:
        context.close()


def test_demo_screenshot_for_the_docs(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with qa.open_archive(tmp_path / "qex_data") as arch:
        fill_demo_archive(arch)
        run = arch.runs(experiment="rabi_sweep", where={"theta_rad": {">": 1.2, "<": 1.3}})[0]
        path = run.artifacts[0].path
    context, page, requests, problems = open_page(browser, path)
    try:
        assert problems == [] and len(requests) == 1
        shot = page.screenshot(full_page=True)
        assert distinct_colours(shot) > 20
        (tmp_path / "bloch-demo.png").write_bytes(shot)
        assert DOCS_SCREENSHOT.is_file(), "docs/bloch-demo.png is missing"
        if os.environ.get("QEX_UPDATE_SCREENSHOT"):
            DOCS_SCREENSHOT.write_bytes(shot)
    finally:
        context.close()


REPORT_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "report.png"


def test_report_in_chromium(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from qex_archive.views.report import write_reports

    with qa.open_archive(tmp_path / "qex_data") as arch:
        fill_demo_archive(arch)
        runs = arch.runs(experiment="ghz_depolarizing")
        (path,) = write_reports(
            runs, tmp_path / "report.html", one_page=True, x="depolarizing", by="n_qubits"
        )
    context, page, requests, problems = open_page(browser, path)
    try:
        assert requests == [path.resolve().as_uri()], "the report fetched something"
        assert problems == []
        plots = page.locator("svg.plot")
        assert plots.count() == 3
        for index in range(2):  # every run is a point in the purity and entropy plots
            assert plots.nth(index).locator("circle.pt").count() == len(runs) == 15
        # the fidelity to the first run: the runs of its dimension (2 qubits) only
        assert plots.nth(2).locator("circle.pt").count() == 5
        links = page.locator("a").evaluate_all("links => links.map(a => a.href)")
        assert len(links) == 15
        for href in links:
            assert Path(href.removeprefix("file://")).is_file(), href
        shot = page.screenshot(full_page=True)
        assert distinct_colours(shot) > 20, "the screenshot is blank"
        (tmp_path / "report.png").write_bytes(shot)
        assert REPORT_SCREENSHOT.is_file(), "docs/report.png is missing"
        if os.environ.get("QEX_UPDATE_SCREENSHOT"):
            REPORT_SCREENSHOT.write_bytes(shot)
    finally:
        context.close()


NOTEBOOK_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
    '<body><div class="output_html">{}</div></body></html>'
)
BALL_FILL = "rgb(238, 243, 251)"  # SPHERE_PAINT's "ball"


def spheres_are_drawn(page, count: int) -> None:  # type: ignore[no-untyped-def]
    """Each of the ``count`` spheres is a light ball with a coloured vector, not a black
    disc: by the computed style of its parts and by the pixels of its screenshot."""
    from PIL import Image

    spheres = page.locator("svg.bloch-sphere")
    assert spheres.count() == count
    for index in range(count):
        sphere = spheres.nth(index)
        fills = sphere.evaluate(
            "svg => ['.ball', '.tip', '.vector', '.equator'].map(s => {"
            " const style = getComputedStyle(svg.querySelector(s));"
            " return [style.fill, style.stroke]; })"
        )
        assert fills[0][0] == BALL_FILL, fills
        assert fills[1][0] == "rgb(194, 65, 12)" and fills[2][1] == "rgb(194, 65, 12)", fills
        assert fills[3][0] == "none", fills  # the equator is a line, not a filled shape
        image = Image.open(io.BytesIO(sphere.screenshot())).convert("RGB")
        width, height = image.size
        inside = [
            image.getpixel((x, y))
            for x in range(0, width, 3)
            for y in range(0, height, 3)
            if (x - width / 2) ** 2 + (y - height / 2) ** 2 < (0.3 * width) ** 2
        ]
        dark = [pixel for pixel in inside if sum(pixel) < 150]
        assert len(dark) < 0.02 * len(inside), f"{len(dark)} of {len(inside)} pixels are black"
        ball = [pixel for pixel in inside if pixel == (238, 243, 251)]
        assert len(ball) > 0.5 * len(inside), "the ball is not painted"


@pytest.mark.parametrize("style", ["kept", "stripped"])
def test_notebook_views_draw_the_spheres_in_chromium(browser, tmp_path: Path, style: str) -> None:  # type: ignore[no-untyped-def]
    """A run's, a selection's and an archive's ``_repr_html_`` as a notebook shows them: in a
    page of the notebook's, with the views' <style> kept, or stripped as a sanitising viewer
    (GitHub, an untrusted notebook) strips it."""
    import re

    plus = np.array([1, 1]) / np.sqrt(2)
    state = np.kron(np.array([1, 0]), plus)  # qubit 0 at |0>, qubit 1 at |+>
    with qa.open_archive(tmp_path / "qex_data") as arch:
        run = arch.record("nb", params={"theta": 1.3089969389957472}, backend="b", state=state)
        fragments = [run._repr_html_(), arch.runs()._repr_html_(), arch._repr_html_()]
    if style == "stripped":
        fragments = [re.sub(r"<style>.*?</style>", "", f, flags=re.S) for f in fragments]
    path = tmp_path / "notebook.html"
    path.write_text(NOTEBOOK_PAGE.format("".join(fragments)), encoding="utf-8")
    context, page, requests, problems = open_page(browser, path)
    try:
        assert requests == [path.resolve().as_uri()] and problems == []
        spheres_are_drawn(page, 2)
        assert page.locator("table").count() == 3
    finally:
        context.close()


def test_the_stored_tutorial_shows_its_spheres_in_chromium(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """docs/tutorial.ipynb as a reader sees it without running it: its stored run view."""
    import json

    notebook = json.loads((DOCS_SCREENSHOT.parent / "tutorial.ipynb").read_text("utf-8"))
    views = [
        "".join(output["data"]["text/html"])
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        if "text/html" in output.get("data", {})
    ]
    run_views = [view for view in views if "bloch-sphere" in view]
    assert len(run_views) == 1, "the tutorial is stored without its run view"
    path = tmp_path / "tutorial.html"
    path.write_text(NOTEBOOK_PAGE.format(run_views[0]), encoding="utf-8")
    context, page, _requests, problems = open_page(browser, path)
    try:
        assert problems == []
        spheres_are_drawn(page, 2)
    finally:
        context.close()
