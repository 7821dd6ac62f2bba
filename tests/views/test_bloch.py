"""The Bloch-sphere page: the numbers it embeds, and what it contains."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qex_archive as qa

from ..conftest import bell_state, random_density_matrix

PAULIS = {
    "x": np.array([[0, 1], [1, 0]], dtype=complex),
    "y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def embedded(page: bytes) -> dict[str, Any]:
    match = re.search(rb'<script type="application/json" id="qex-data">(.*?)</script>', page, re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def independent_bloch_vectors(rho: np.ndarray, n: int) -> list[list[float]]:
    """Partial trace written out with einsum index letters, then Tr(rho_k sigma)."""
    letters = string.ascii_letters
    tensor = rho.reshape([2] * (2 * n))
    vectors = []
    for k in range(n):
        rows = list(letters[:n])
        cols = list(letters[n : 2 * n])
        for j in range(n):
            if j != k:
                cols[j] = rows[j]  # trace over subsystem j
        spec = "".join(rows) + "".join(cols) + "->" + rows[k] + cols[k]
        reduced = np.einsum(spec, tensor)
        vectors.append([float(np.trace(reduced @ PAULIS[a]).real) for a in "xyz"])
    return vectors


@pytest.fixture
def arch(tmp_path: Path) -> qa.Archive:
    return qa.open_archive(tmp_path / "qex_data")


def page_of(run: qa.Run) -> bytes:
    (artifact,) = [a for a in run.artifacts if a.name == "bloch"]
    return artifact.path.read_bytes()


def test_vectors_of_1000_random_states_match_an_independent_computation(arch: qa.Archive) -> None:
    from qex_archive.views.bloch import bloch_page

    rng = np.random.default_rng(2026)
    template = arch.record("e", backend="b", state=np.eye(2) / 2)
    for trial in range(1000):
        n = int(rng.integers(1, 7))
        rho = random_density_matrix(2**n, rng, rank=int(rng.integers(1, 2**n + 1)))
        run = qa.Run(arch, (*template.row()[:6], json.dumps({"state": {"dims": [2] * n}})), rho=rho)
        data = embedded(bloch_page(run, rho))
        got = [s["bloch"] for s in data["subsystems"]]
        np.testing.assert_allclose(
            got, independent_bloch_vectors(rho, n), atol=1e-12, rtol=0, err_msg=str(trial)
        )


@pytest.mark.parametrize(
    ("psi", "expected"),
    [
        ([1, 0], [0, 0, 1]),
        ([0, 1], [0, 0, -1]),
        ([1, 1], [1, 0, 0]),
        ([1, -1], [-1, 0, 0]),
        ([1, 1j], [0, 1, 0]),
        ([1, -1j], [0, -1, 0]),
    ],
    ids=["|0>", "|1>", "|+>", "|->", "|+i>", "|-i>"],
)
def test_textbook_states(arch: qa.Archive, psi: list[complex], expected: list[float]) -> None:
    vector = np.array(psi, dtype=complex) / np.linalg.norm(psi)
    data = embedded(page_of(arch.record("e", backend="b", state=vector)))
    (qubit,) = data["subsystems"]
    np.testing.assert_allclose(qubit["bloch"], expected, atol=1e-15)
    assert qubit["length"] == pytest.approx(1) and qubit["purity"] == pytest.approx(1)


def test_mixed_state_and_bell_pair_sit_at_the_centre(arch: qa.Archive) -> None:
    mixed = embedded(page_of(arch.record("e", backend="b", state=np.eye(2) / 2)))
    assert mixed["subsystems"][0]["bloch"] == [0, 0, 0]
    assert mixed["subsystems"][0]["purity"] == pytest.approx(0.5)
    page = page_of(arch.record("bell", backend="b", state=bell_state()))
    bell = embedded(page)
    assert [s["bloch"] for s in bell["subsystems"]] == [[0, 0, 0], [0, 0, 0]]
    assert bell["purity"] == pytest.approx(1)  # globally pure, locally maximally mixed
    assert b"hide entanglement" in page


def test_product_state_orders_qubits_big_endian(arch: qa.Archive) -> None:
    plus = np.array([1, 1]) / np.sqrt(2)
    psi = np.kron(np.kron(plus, [1, 0]), [0, 1])  # qubit 0 |+>, qubit 1 |0>, qubit 2 |1>
    data = embedded(page_of(arch.record("e", backend="b", state=psi)))
    np.testing.assert_allclose(
        [s["bloch"] for s in data["subsystems"]], [[1, 0, 0], [0, 0, 1], [0, 0, -1]], atol=1e-15
    )


def test_the_page_is_self_contained(arch: qa.Archive) -> None:
    page = page_of(arch.record("e", backend="b", state=bell_state())).decode()
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'' in page
    assert not re.search(r"(src|href)\s*=", page), "nothing may be loaded"
    assert "http://" not in page and "https://" not in page and "@import" not in page
    assert page.count('class="bloch-sphere"') == 2
    for label in ("|0⟩", "|1⟩", "|+⟩", "|+i⟩"):
        assert label in page


def test_header_shows_the_run_and_its_findings(arch: qa.Archive) -> None:
    run = arch.record("tomo", backend="ibm_fake", state=[[1.1, 0], [0, -0.1]])
    page = page_of(run).decode()
    for text in (
        "tomo",
        "ibm_fake",
        run.run_id,
        "big_endian",
        "Not a physical state",
        "positive semidefinite",
    ):
        assert text in page
    assert embedded(page_of(run))["is_valid"] is False


def test_hostile_text_cannot_break_out(arch: qa.Archive) -> None:
    evil = '</script><script>alert(1)</script><img src=x onerror="alert(2)">'
    page = page_of(arch.record(evil, backend=evil, state=np.eye(2) / 2)).decode()
    assert "<script>alert" not in page and "<img" not in page
    assert page.count("</script>") == 1  # only the data element's own end tag
    assert embedded(page.encode())["experiment_name"] == evil


def test_above_ten_qubits_a_table_replaces_the_spheres(arch: qa.Archive) -> None:
    from qex_archive.views.bloch import MAX_SPHERES

    n = MAX_SPHERES + 1
    psi = np.zeros(2**n, dtype=complex)
    psi[0] = 1
    page = page_of(arch.record("big", backend="b", state=psi)).decode()
    assert 'class="bloch-sphere"' not in page
    assert page.count("<tr>") == n + 1
    assert len(embedded(page.encode())["subsystems"]) == n


def test_qudits_are_noted_and_qubits_still_drawn(arch: qa.Archive) -> None:
    qutrit = np.diag([1, 0, 0])
    rho = np.kron(qutrit, np.array([[0.5, 0.5], [0.5, 0.5]]))
    page = page_of(arch.record("hybrid", backend="b", state=rho, dims=[3, 2])).decode()
    assert page.count('class="bloch-sphere"') == 1
    assert "Not qubits, so no Bloch sphere: 0 (dimension 3)" in page
    data = embedded(page.encode())
    assert "bloch" not in data["subsystems"][0]
    np.testing.assert_allclose(data["subsystems"][1]["bloch"], [1, 0, 0], atol=1e-15)


def test_a_sphere_paints_itself_without_a_style_sheet() -> None:
    """Each part of a sphere carries its own paint (presentation attributes), defined once in
    SPHERE_PAINT: the notebook views, whose <style> a viewer may strip, and the page draw the
    same sphere, never a black disc (SVG's default fill)."""
    from qex_archive.views import bloch

    summary = {"index": 0, "label": 0, "bloch": [0.0, 0.0, 1.0]}
    svg = bloch.sphere_svg(summary)
    parts = re.findall(r'<(circle|path|line|text) [^>]*class="([^"]+)"([^>]*)>', svg)
    assert {part for _, part, _ in parts} == set(bloch.SPHERE_PAINT)
    for _, part, attributes in parts:
        assert bloch.SPHERE_PAINT[part] in attributes
        assert re.search(r'\b(fill|stroke)="#', attributes), part
    assert 'class="ball" fill="#eef3fb"' in svg
    # one definition: the page's style does not paint the sphere's parts again
    assert not any(f".{part.split()[-1]}{{" in bloch.STYLE for part in bloch.SPHERE_PAINT)
