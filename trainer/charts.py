"""Loss curves as inline SVG markup: no JavaScript, no chart library, printable in a report.

Pure function over plain numbers; labels are escaped, so a series may be named by a user.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#2f5bd3", "#c0392b", "#1f8a4c", "#b7791f", "#7b3fb5", "#0f7c8c")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 12, 12, 34
MARKERS_UP_TO = 40  # series with this many points or fewer also get a dot per point


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) covering [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    # The round step whose number of intervals comes closest to the one asked for.
    step = min(
        (m * magnitude for m in (1, 2, 5, 10)),
        key=lambda s: abs((high - low) / s - (count - 1)),
    )
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 10))
        value += step
    return ticks


def _label(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def loss_curve_svg(
    series: dict[str, list[tuple[float, float]]], *, width: int = 640, height: int = 240
) -> str:
    """An ``<svg>`` with one line per series of (x, y) points, axes with ticks and a legend."""
    points = [p for values in series.values() for p in values]
    title = escape(", ".join(series) or "loss")
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="loss-chart" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" aria-label="{title}">'
    )
    if not points:
        return (
            f'{head}<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
            f'fill="#5b6475">no points yet</text></svg>'
        )

    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(p[1] for p in points), max(p[1] for p in points)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high == y_low:
        pad = abs(y_low) * 0.1 or 0.5
        y_low, y_high = y_low - pad, y_high + pad
    x_ticks, y_ticks = nice_ticks(x_low, x_high), nice_ticks(y_low, y_high)
    x_low, x_high = min(x_low, x_ticks[0]), max(x_high, x_ticks[-1])
    y_low, y_high = min(y_low, y_ticks[0]), max(y_high, y_ticks[-1])
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM

    def sx(x: float) -> float:
        return MARGIN_LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return MARGIN_TOP + (y_high - y) / (y_high - y_low) * plot_h

    parts = [head]
    bottom, right = MARGIN_TOP + plot_h, MARGIN_LEFT + plot_w
    for y in y_ticks:
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" '
            f'stroke="#dde1e8"/><text x="{MARGIN_LEFT - 6}" y="{sy(y) + 4:.1f}" '
            f'text-anchor="end" font-size="11" fill="#5b6475">{_label(y)}</text>'
        )
    for x in x_ticks:
        parts.append(
            f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{bottom}" y2="{bottom + 4}" '
            f'stroke="#5b6475"/><text x="{sx(x):.1f}" y="{bottom + 16}" text-anchor="middle" '
            f'font-size="11" fill="#5b6475">{_label(x)}</text>'
        )
    parts.append(
        f'<line x1="{MARGIN_LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#5b6475"/>'
        f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT}" y1="{MARGIN_TOP}" y2="{bottom}" '
        f'stroke="#5b6475"/>'
    )
    for number, (name, values) in enumerate(series.items()):
        colour = PALETTE[number % len(PALETTE)]
        ordered = sorted(values)
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ordered)
        parts.append(
            f'<polyline class="series" data-series="{escape(name)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.8" points="{coords}"/>'
        )
        if len(ordered) <= MARKERS_UP_TO:
            parts.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>'
                for x, y in ordered
            )
        legend_y = MARGIN_TOP + 6 + 16 * number
        parts.append(
            f'<rect x="{right - 130}" y="{legend_y - 8}" width="10" height="10" '
            f'fill="{colour}"/><text x="{right - 115}" y="{legend_y + 1}" font-size="12" '
            f'fill="#1d2330">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
