"""One scatter plot as inline SVG, bounded whatever the values: axes that never overflow and are
never empty, ticks produced by count, a legend of a bounded number of groups. Drawn by the
experiment report (:mod:`.report`)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from .html import esc
from .values import number

WIDTH, HEIGHT = 430, 250
TICKS_MAX = 12  # ticks on an axis
LABELLED_POINTS = 2000
LEGEND_MAX = 16  # groups named in a legend
MARGIN = {"left": 58, "right": 14, "top": 14, "bottom": 44}
TEXT_MAX = 80  # characters of any one name or value shown


def clip(text: object, limit: int = TEXT_MAX) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis says it was)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


COLORS = ("#2563eb", "#c2410c", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#92400e")


@dataclass(frozen=True)
class Point:
    run_id: str
    x: float
    y: float
    group: str


_LARGEST = sys.float_info.max


def _axis(low: float, high: float, least: float) -> tuple[float, float]:
    """The range an axis shows for values from ``low`` to ``high`` (finite): a little wider
    at both ends, at least ``least`` wide (or a millionth of the values, where a difference of
    ``least`` is lost in their precision), finite and never empty."""
    half = high / 2 - low / 2  # halves: no overflow for values of opposite sign near the limit
    centre = low / 2 + high / 2
    if half * 2 < least or high - low <= 0:
        half = max(least / 2, abs(centre) * 1e-6)
    half *= 1.08  # room for the points at the ends
    low = max(centre - half, -_LARGEST)
    high = min(centre + half, _LARGEST)
    if not low < high:  # a span too small for the floats there (or subnormal)
        low, high = math.nextafter(centre, -math.inf), math.nextafter(centre, math.inf)
    return low, high


def _labelled(ticks: list[float]) -> list[tuple[float, str]]:
    """Each tick with its label, leaving out a tick whose label repeats the one before (at
    1e16, ticks 2 apart all read 1e+16)."""
    labelled: list[tuple[float, str]] = []
    for tick in ticks:
        text = number(tick, ".6g")
        if not labelled or text != labelled[-1][1]:
            labelled.append((tick, text))
    return labelled


def _place(value: float, low: float, high: float) -> float:
    """Where ``value`` lies between ``low`` and ``high``: 0 at low, 1 at high (no overflow)."""
    span = high / 2 - low / 2
    return (value / 2 - low / 2) / span if span > 0 else 0.5


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values between ``low`` and ``high``: at most about ``2 * count`` of them, made by
    count (a step lost in the values' precision cannot make the list endless)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high / 2 - low / 2) / count * 2
    if not raw > 0 or not math.isfinite(raw):
        return [low, high]
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), raw)
    first = math.ceil(low / step)
    ticks: list[float] = []
    for i in range(2 * count + 2):
        value = (first + i) * step
        if not math.isfinite(value) or value > high + step * 1e-9:
            break
        value = round(value, 12)
        if not ticks or value > ticks[-1]:  # neighbours the floats cannot tell apart: one
            ticks.append(value)
    return ticks or [low]


def figure(
    title: str, points: list[Point], x_label: str, categories: list[str] | None, by: str | None
) -> str:
    plot_w = WIDTH - MARGIN["left"] - MARGIN["right"]
    plot_h = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    groups = sorted({p.group for p in points})
    legend_lines = min(len(groups), LEGEND_MAX) + (len(groups) > LEGEND_MAX)
    legend_h = 16 * legend_lines if by else 0
    svg = [
        f'<svg class="plot" width="{WIDTH}" height="{HEIGHT + legend_h}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT + legend_h}" role="img" aria-label="{esc(title)}">'
    ]
    if not points:
        svg.append(f'<text class="label" x="{WIDTH / 2}" y="{HEIGHT / 2}">no values</text></svg>')
        return f"<figure><figcaption>{esc(title)}</figcaption>{''.join(svg)}</figure>"
    x_low, x_high = _axis(min(p.x for p in points), max(p.x for p in points), 2.0)
    y_low, y_high = _axis(min(p.y for p in points), max(p.y for p in points), 0.1)

    def sx(value: float) -> float:
        return MARGIN["left"] + _place(value, x_low, x_high) * plot_w

    def sy(value: float) -> float:
        return MARGIN["top"] + (1 - _place(value, y_low, y_high)) * plot_h

    left, top, bottom = MARGIN["left"], MARGIN["top"], MARGIN["top"] + plot_h
    for tick, text in _labelled(ticks(y_low, y_high)):
        y = sy(tick)
        svg.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        svg.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
        )
    x_ticks = (
        [(float(i), name) for i, name in enumerate(categories[:TICKS_MAX])]
        if categories is not None
        else _labelled(ticks(x_low, x_high))
    )
    for value, text in x_ticks[:TICKS_MAX]:
        x = sx(value)
        svg.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>')
        svg.append(
            f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{esc(text[:14])}</text>"
        )
    svg.append(f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>')
    svg.append(
        f'<text class="label" x="{left + plot_w / 2}" y="{bottom + 36}">{esc(x_label)}</text>'
    )
    color = {group: COLORS[i % len(COLORS)] for i, group in enumerate(groups)}
    # a hover label costs bytes on every point: a large plot goes without, to keep the page small
    labelled = len(points) <= LABELLED_POINTS
    for point in points:
        label = f"<title>{point.run_id[:8]}: {number(point.y, '.6g')}</title>" if labelled else ""
        svg.append(
            f'<circle class="pt" cx="{sx(point.x):.1f}" cy="{sy(point.y):.1f}" r="3.2" '
            f'fill="{color[point.group]}">{label}</circle>'
        )
    if by:
        for i, group in enumerate(groups[:LEGEND_MAX]):
            y = HEIGHT + 12 + 16 * i
            svg.append(f'<circle cx="{left + 6}" cy="{y - 4}" r="4" fill="{color[group]}"/>')
            svg.append(f'<text class="legend" x="{left + 16}" y="{y}">{esc(clip(group))}</text>')
        if len(groups) > LEGEND_MAX:
            y = HEIGHT + 12 + 16 * LEGEND_MAX
            more = f"and {len(groups) - LEGEND_MAX:,} more groups (colours repeat)"
            svg.append(f'<text class="legend" x="{left + 16}" y="{y}">{more}</text>')
    svg.append("</svg>")
    return f"<figure><figcaption>{esc(title)}</figcaption>{''.join(svg)}</figure>"
