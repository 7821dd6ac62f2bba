"""Per-qubit Bloch vectors and the self-contained Bloch-sphere HTML page.

The page fetches nothing (a Content-Security-Policy forbids it), uses inline SVG only and
embeds its numbers as JSON, so it can be mailed, archived and read offline for decades.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._timeutil import iso_local
from ..physics.measures import bloch_vector, reduced_state
from ..physics.measures import purity as state_purity
from .html import esc, page
from .values import format_tags, number, params_text

if TYPE_CHECKING:
    from ..run import Run

ComplexMatrix = npt.NDArray[np.complex128]
MAX_SPHERES = 10
SIZE = 220
RADIUS = 80
AZIMUTH = math.radians(30)
ELEVATION = math.radians(20)


def subsystem_summaries(
    rho: ComplexMatrix, dims: Sequence[int], labels: Sequence[Any]
) -> list[dict[str, Any]]:
    summaries = []
    for k, d in enumerate(dims):
        reduced = reduced_state(rho, dims, k)
        purity = state_purity(reduced)
        entry: dict[str, Any] = {
            "index": k,
            "label": labels[k] if k < len(labels) else k,
            "dim": d,
            "purity": purity,
        }
        if d == 2:
            x, y, z = bloch_vector(reduced)
            entry["bloch"] = [x, y, z]
            entry["length"] = math.sqrt(x * x + y * y + z * z)
        summaries.append(entry)
    return summaries


def _project(x: float, y: float, z: float) -> tuple[float, float]:
    """Screen position of a point of the unit ball, seen from azimuth 30°, elevation 20°."""
    u = -x * math.sin(AZIMUTH) + y * math.cos(AZIMUTH)
    toward_viewer = x * math.cos(AZIMUTH) + y * math.sin(AZIMUTH)
    v = z * math.cos(ELEVATION) - toward_viewer * math.sin(ELEVATION)
    return SIZE / 2 + RADIUS * u, SIZE / 2 - RADIUS * v


def _depth(x: float, y: float, z: float) -> float:
    toward_viewer = x * math.cos(AZIMUTH) + y * math.sin(AZIMUTH)
    return toward_viewer * math.cos(ELEVATION) + z * math.sin(ELEVATION)


def _equator_paths() -> tuple[str, str]:
    """SVG path data for the front (solid) and back (dashed) halves of the equator."""
    paths: dict[bool, list[str]] = {True: [], False: []}
    previous = None
    for i in range(73):
        angle = 2 * math.pi * i / 72
        point = (math.cos(angle), math.sin(angle), 0.0)
        front = _depth(*point) >= 0
        u, v = _project(*point)
        command = "L" if front == previous else "M"
        if command == "M" and previous is not None:
            # close the gap to the other half so the ellipse has no hole
            paths[previous].append(f"L{u:.1f},{v:.1f}")
        paths[front].append(f"{command}{u:.1f},{v:.1f}")
        previous = front
    return " ".join(paths[True]), " ".join(paths[False])


# How each part of a sphere is painted, as SVG presentation attributes on the elements
# themselves: the one definition of the sphere's look, so that a sphere is drawn the same on
# its page, in a notebook (whose HTML output may have its <style> stripped, or none at all)
# and wherever else its SVG is pasted. A page's style may still override them.
SPHERE_PAINT = {
    "ball": 'fill="#eef3fb" stroke="#7d8ca3" stroke-width="1.2"',
    "equator": 'fill="none" stroke="#7d8ca3" stroke-width="1"',
    "equator back": 'fill="none" stroke="#7d8ca3" stroke-width="1" stroke-dasharray="3 3" '
    'opacity="0.6"',
    "axis": 'stroke="#b4bcc8" stroke-width="1"',
    "axis-label": 'font-size="11" fill="#3e4754" text-anchor="middle"',
    "vector": 'stroke="#c2410c" stroke-width="3" stroke-linecap="round"',
    "tip": 'fill="#c2410c"',
}


def _paint(part: str) -> str:
    """The class and the presentation attributes of one part of the sphere."""
    return f'class="{part}" {SPHERE_PAINT[part]}'


AXES = (
    ((0, 0, 1), "|0⟩"),
    ((0, 0, -1), "|1⟩"),
    ((1, 0, 0), "|+⟩"),
    ((-1, 0, 0), "|−⟩"),
    ((0, 1, 0), "|+i⟩"),
    ((0, -1, 0), "|−i⟩"),
)


@functools.cache
def _sphere_background() -> str:
    """Ball, equator and labelled axes: the same for every sphere, so drawn once."""
    cx = cy = SIZE / 2
    parts = [f'<circle cx="{cx}" cy="{cy}" r="{RADIUS}" {_paint("ball")}/>']
    front, back = _equator_paths()
    parts.append(f'<path d="{back}" {_paint("equator back")}/>')
    parts.append(f'<path d="{front}" {_paint("equator")}/>')
    for (ax, ay, az), label in AXES:
        u, v = _project(ax, ay, az)
        parts.append(f'<line x1="{cx}" y1="{cy}" x2="{u:.1f}" y2="{v:.1f}" {_paint("axis")}/>')
        lu, lv = _project(ax * 1.22, ay * 1.22, az * 1.22)
        parts.append(f'<text x="{lu:.1f}" y="{lv + 4:.1f}" {_paint("axis-label")}>{label}</text>')
    return "".join(parts)


def sphere_svg(summary: dict[str, Any]) -> str:
    x, y, z = summary["bloch"]
    cx = cy = SIZE / 2
    parts = [
        f'<svg class="bloch-sphere" data-qubit="{summary["index"]}" width="{SIZE}" '
        f'height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}" role="img" '
        f'aria-label="Bloch sphere of qubit {esc(summary["label"])}">',
        _sphere_background(),
    ]
    u, v = _project(x, y, z)
    parts.append(f'<line x1="{cx}" y1="{cy}" x2="{u:.1f}" y2="{v:.1f}" {_paint("vector")}/>')
    parts.append(f'<circle cx="{u:.1f}" cy="{v:.1f}" r="4" {_paint("tip")}/>')
    parts.append("</svg>")
    return "".join(parts)


# the page around the spheres (the spheres paint themselves: SPHERE_PAINT)
STYLE = """
.findings{background:#fff3f0;border-left:3px solid #d0452f;padding:8px 12px;max-width:760px}
.grid{display:flex;flex-wrap:wrap;gap:18px;margin-top:16px}
figure{margin:0;border:1px solid #dde2e8;border-radius:6px;padding:8px;text-align:center}
figcaption{font-variant-numeric:tabular-nums;font-size:13px}
"""


def bloch_page(run: Run, rho: ComplexMatrix) -> bytes:
    """The Bloch-sphere HTML page of a run."""
    state = run.state_info
    validation = run.validation
    dims = list(state.get("dims") or [])
    labels = list(state.get("subsystem_labels") or range(len(dims)))
    subsystems = subsystem_summaries(rho, dims, labels)
    qubits = [s for s in subsystems if s["dim"] == 2]
    data = {
        "run_id": run.run_id,
        "experiment_name": run.experiment_name,
        "backend_name": run.backend_name,
        "timestamp": run.timestamp,
        "dims": dims,
        "ordering": state.get("ordering"),
        "purity": validation.get("purity"),
        "von_neumann_entropy_bits": validation.get("von_neumann_entropy_bits"),
        "is_valid": validation.get("is_valid"),
        "findings": validation.get("findings") or [],
        "subsystems": subsystems,
    }
    title = f"{run.experiment_name} · {run.run_id[:8]}"
    params, tags = params_text(run, empty="(none)"), format_tags(run.tags)
    attached = run.attachment_names
    out = [
        f"<h1>{esc(run.experiment_name)}</h1>",
        f'<div class="sub">run {esc(run.run_id)}</div><dl>',
        f"<dt>backend</dt><dd>{esc(run.backend_name)}</dd>",
        f"<dt>time</dt><dd>{esc(iso_local(run.timestamp))}</dd>",
        f"<dt>params</dt><dd>{esc(params)}</dd>",
        *([f"<dt>tags</dt><dd>{esc(tags)}</dd>"] if tags else []),
        *([f"<dt>attachments</dt><dd>{esc(', '.join(attached))}</dd>"] if attached else []),
        f"<dt>dims</dt><dd>{esc(str(dims))}</dd>",
        f"<dt>ordering</dt><dd>{esc(str(state.get('ordering')))} (subsystem 0 is the leftmost "
        "kron factor)</dd>",
        f"<dt>purity</dt><dd>{number(validation.get('purity'))}</dd>",
        f"<dt>entropy</dt><dd>{number(validation.get('von_neumann_entropy_bits'))} bits</dd>",
        "</dl>",
    ]
    findings = validation.get("findings") or []
    if findings:
        items = "".join(f"<li>{esc(str(f))}</li>" for f in findings)
        out.append(f'<div class="findings"><b>Not a physical state:</b><ul>{items}</ul></div>')
    out.append(
        '<p class="note">Each sphere shows one qubit\'s reduced state (the partial trace over '
        "all others). Per-qubit vectors hide entanglement: both qubits of a Bell pair sit at "
        "the centre, exactly as the maximally mixed state does.</p>"
    )
    others = [s for s in subsystems if s["dim"] != 2]
    if others:
        listed = ", ".join(f"{esc(str(s['label']))} (dimension {s['dim']})" for s in others)
        out.append(f'<p class="note">Not qubits, so no Bloch sphere: {listed}.</p>')
    if len(qubits) > MAX_SPHERES:
        out.append(
            "<table><tr><th>qubit</th><th>x</th><th>y</th><th>z</th><th>|r|</th><th>purity</th></tr>"
        )
        for q in qubits:
            x, y, z = q["bloch"]
            out.append(
                f"<tr><td>{esc(str(q['label']))}</td><td>{x:+.4f}</td><td>{y:+.4f}</td>"
                f"<td>{z:+.4f}</td><td>{q['length']:.4f}</td><td>{q['purity']:.4f}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append('<div class="grid">')
        for q in qubits:
            x, y, z = q["bloch"]
            out.append(
                f"<figure>{sphere_svg(q)}<figcaption><b>qubit {esc(str(q['label']))}</b><br>"
                f"(x, y, z) = ({x:+.3f}, {y:+.3f}, {z:+.3f})<br>"
                f"|r| = {q['length']:.3f} · purity {q['purity']:.3f}</figcaption></figure>"
            )
        out.append("</div>")
    return page(title, out, style=STYLE, data=data)
