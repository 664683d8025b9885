"""Bar charts as inline SVG: no script, so the dashboard's strict CSP holds.

A chart has a caption (its title, a summary in words: total and highest bar, and the
legend of its marker), an accessible name and description (``role="img"``, ``<title>``,
``<desc>``), a y axis with a few round ticks, x labels thinned to fit, a ``<title>`` per
bar (the exact value on hover), and a marker over the bars that carry a flag (unpriced
usage, whose cost is unknown and not in the bar). The figures follow the chart as a
table, so every value can be read as text too. The SVG scales to its container
(``viewBox``); a bucket without usage is a zero, drawn as an empty slot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reference_gateway.dashboard.page import e

__all__ = ["Point", "bar_chart", "compact", "nice_ticks"]

# Drawn at 480 x 200 and scaled to the page: on a phone the text is still readable.
_WIDTH, _HEIGHT = 480, 200
_RIGHT, _TOP, _BOTTOM = 10, 12, 28
_FONT = 14
_CHAR = 8.2  # the width of a character of an axis label at _FONT, about
_MAX_LABELS = 6
_BAR = "#2b59c3"
_FLAG = "#c2410c"


@dataclass(frozen=True, slots=True)
class Point:
    """One bar: ``label`` names it in full (``2026-01-31``), ``tick`` on the axis
    (``01-31``); ``flag`` (e.g. "unpriced usage: cost unknown") marks the bar."""

    label: str
    tick: str
    value: float
    flag: str | None = None


def compact(value: float) -> str:
    """``value`` short for an axis: ``950``, ``1.5k``, ``12M``."""
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def nice_ticks(top: float, *, whole: bool = True, most: int = 5) -> list[float]:
    """Round ticks from 0 covering ``top`` in at most ``most`` steps, the smallest step
    of 1, 2 or 5 times a power of ten (at least 1 when ``whole``); ``[0, 1]`` for an
    empty chart."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(step, 1)
    steps = math.ceil(top / step - 1e-9)
    return [step * n for n in range(steps + 1)]


def bar_chart(
    chart_id: str,
    title: str,
    points: Sequence[Point],
    *,
    fmt: Callable[[float], str],
    axis: Callable[[float], str] = compact,
    whole: bool = True,
    flag_legend: str | None = None,
    category: str = "When",
) -> str:
    """A ``<figure>``: a caption (title, summary, legend), the SVG chart, and its figures
    as a table.

    ``fmt`` writes an exact value (bar titles, table, summary), ``axis`` a tick;
    ``whole`` keeps tick steps whole numbers (counts, pico-dollars); ``category`` heads
    the table's column of bar labels.
    """
    top = max((point.value for point in points), default=0)
    ticks = nice_ticks(top, whole=whole)
    scale_top = ticks[-1]
    # An empty chart keeps its scale but labels only its zero.
    labels = [axis(tick) if top > 0 or tick == 0 else "" for tick in ticks]
    left = max(36, round(_CHAR * max(len(label) for label in labels)) + 10)
    plot_w = _WIDTH - left - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    base = _TOP + plot_h
    slot = plot_w / max(len(points), 1)
    bar_w = max(slot * 0.75, 1.0)
    summary = _describe(points, fmt)
    cid = e(chart_id)
    parts = [
        f'<svg class="chart" id="{cid}" role="img" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'aria-labelledby="{cid}-title {cid}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{cid}-title">{e(title)}</title><desc id="{cid}-desc">{e(summary)}</desc>',
    ]
    for tick, label in zip(ticks, labels, strict=True):
        y = base - plot_h * tick / scale_top
        parts.append(
            f'<line x1="{left}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#9aa5b4" if tick == 0 else "#e6e9ee"}" stroke-width="1"/>'
        )
        if label:
            parts.append(
                f'<text x="{left - 5}" y="{y + 4:.1f}" font-size="{_FONT}" '
                f'text-anchor="end" fill="#4a5568">{e(label)}</text>'
            )
    every = max(1, math.ceil(len(points) / _MAX_LABELS))
    for index, point in enumerate(points):
        x = left + slot * index
        height = plot_h * point.value / scale_top
        note = f" ({point.flag})" if point.flag else ""
        parts.append(
            f'<g class="bar"><title>{e(point.label)}: {e(fmt(point.value))}{e(note)}</title>'
            f'<rect x="{x:.1f}" y="{_TOP}" width="{slot:.1f}" height="{plot_h}" '
            'fill="transparent"/>'
        )
        if height > 0:
            parts.append(
                f'<rect x="{x + (slot - bar_w) / 2:.1f}" y="{base - height:.1f}" '
                f'width="{bar_w:.1f}" height="{height:.1f}" fill="{_BAR}"/>'
            )
        if point.flag:
            cx, cy = x + slot / 2, base - height - 3
            parts.append(f'<path d="M{cx - 5:.1f} {cy:.1f}h10l-5 -9z" fill="{_FLAG}"/>')
        parts.append("</g>")
        if index % every == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{base + 18}" font-size="{_FONT}" '
                f'text-anchor="middle" fill="#4a5568">{e(point.tick)}</text>'
            )
    parts.append("</svg>")
    legend = ""
    if flag_legend and any(point.flag for point in points):
        legend = f' <span class="legend">▲ {e(flag_legend)}</span>'
    caption = (
        f'<figcaption><strong>{e(title)}</strong> <span class="muted">{e(summary)}</span>'
        f"{legend}</figcaption>"
    )
    rows = "".join(
        f"<tr><td>{e(point.label)}</td><td class=num>{e(fmt(point.value))}</td>"
        f"<td>{_flag(point.flag)}</td></tr>"
        for point in points
    )
    table = (
        f'<details class="figures"><summary>{e(title)}: the figures</summary>'
        f'<div class="scroll"><table><thead><tr><th>{e(category)}</th><th class=num>Value</th>'
        f"<th>Note</th></tr></thead><tbody>{rows}</tbody></table></div></details>"
    )
    return f'<figure class="chart" id="{cid}-figure">{caption}{"".join(parts)}{table}</figure>'


def _flag(flag: str | None) -> str:
    return f'<span class="flag">{e(flag)}</span>' if flag else ""


def _describe(points: Sequence[Point], fmt: Callable[[float], str]) -> str:
    if not points:
        return "No data."
    peak = max(points, key=lambda point: point.value)
    span = points[0].label if len(points) == 1 else f"{points[0].label} to {points[-1].label}"
    text = f"{span}: total {fmt(sum(point.value for point in points))}"
    text += f"; highest {fmt(peak.value)} ({peak.label})" if peak.value else "; all zero"
    flagged = [point for point in points if point.flag]
    if flagged:
        text += f"; {len(flagged)} marked ({flagged[0].flag})"
    return text + "."
