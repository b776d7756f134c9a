"""Small server-rendered SVG charts: the run page's loss curves, the analysis page and the
exported report.

Every function returns finished markup (a ``SafeString``) in which all text that came from data
(system names, rater names, labels) has been escaped, so model outputs or user names cannot
inject markup. Charts carry no script and load nothing: they work in an emailed file and in PDF.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
ACCENT = "#2f5bd3"
MUTED = "#5b6475"
LINE = "#dde1e8"
INK = "#1d2330"
# Line colours for several series, the accent first.
SERIES = (ACCENT, "#c0392b", "#1f8a4c", "#b7791f", "#7b3fb5", "#0f7c8c")
LABEL_CHARS = 28
# The loss-curve plot area inside its SVG: room for tick values and the axis titles.
LOSS_MARGIN_LEFT, LOSS_MARGIN_RIGHT, LOSS_MARGIN_TOP, LOSS_MARGIN_BOTTOM = 72, 12, 12, 42
MARKERS_UP_TO = 40  # loss series with this many points or fewer also get a dot per point


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of a bar chart; ``low``/``high`` draw a whisker when both are given."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


def _shorten(label: str, limit: int = LABEL_CHARS) -> str:
    """Labels longer than the label column get an ellipsis; the full text stays in <title>."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _num(x: float) -> str:
    return f"{x:.1f}"


def _svg(
    width: int, height: int, title: str, body: list[str], *, css_class: str = "chart"
) -> SafeString:
    # Safe because every data-derived string in body went through escape().
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def interval_bars(
    bars: Sequence[Bar],
    *,
    title: str,
    domain: tuple[float, float] = (0.0, 1.0),
    reference: float | None = 0.5,
    percent: bool = True,
    width: int = 640,
) -> SafeString:
    """Horizontal bars with interval whiskers, e.g. win rates with their 95 % intervals."""
    label_w, note_w, row_h, top = 190, 150, 26, 22
    plot_w = width - label_w - note_w
    height = top + row_h * max(len(bars), 1) + 24
    lo, hi = domain

    def x(v: float) -> float:
        return label_w + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    def fmt(v: float) -> str:
        return f"{v * 100:.0f}%" if percent else f"{v:g}"

    body = [f"<g {FONT}>"]
    for tick in (lo, (lo + hi) / 2, hi):
        body.append(
            f'<text x="{_num(x(tick))}" y="14" text-anchor="middle" fill="{MUTED}">'
            f"{escape(fmt(tick))}</text>"
        )
    if reference is not None:
        body.append(
            f'<line x1="{_num(x(reference))}" x2="{_num(x(reference))}" y1="{top - 4}" '
            f'y2="{height - 20}" stroke="{MUTED}" stroke-dasharray="4 3"/>'
        )
    for i, bar in enumerate(bars):
        y = top + i * row_h
        body.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">'
            f"<title>{escape(bar.label)}</title>{escape(_shorten(bar.label))}</text>"
        )
        if bar.value is not None:
            base = x(max(lo, min(0.0, hi)))
            body.append(
                f'<rect x="{_num(min(base, x(bar.value)))}" y="{y + 5}" '
                f'width="{_num(abs(x(bar.value) - base))}" height="14" fill="{ACCENT}" '
                f'fill-opacity="0.75"/>'
            )
        if bar.low is not None and bar.high is not None:
            x1, x2, mid = x(bar.low), x(bar.high), y + 12
            body.append(
                f'<path d="M{_num(x1)} {mid}H{_num(x2)}M{_num(x1)} {mid - 6}V{mid + 6}'
                f'M{_num(x2)} {mid - 6}V{mid + 6}" stroke="#1d2330" stroke-width="1.5" '
                f'fill="none"/>'
            )
        if bar.note:
            body.append(
                f'<text x="{label_w + plot_w + 8}" y="{y + 16}" fill="{MUTED}">'
                f"{escape(bar.note)}</text>"
            )
    body.append("</g>")
    return _svg(width, height, title, body)


def _cell_colour(value: float | None) -> str:
    """Diverging scale for −1..1: red below zero, white at zero, blue above; grey when absent."""
    if value is None or math.isnan(value):
        return "#eceef2"
    v = max(-1.0, min(1.0, value))
    if v >= 0:
        r, g, b = (int(255 - (255 - c) * v) for c in (47, 91, 211))
    else:
        r, g, b = (int(255 - (255 - c) * -v) for c in (192, 57, 43))
    return f"rgb({r},{g},{b})"


def heatmap(
    labels: Sequence[str],
    values: dict[tuple[int, int], float | None],
    *,
    title: str,
    cell: int = 34,
) -> SafeString:
    """A symmetric matrix (e.g. Cohen's κ per pair of raters); missing cells are grey."""
    n = len(labels)
    left, top = 130, 110
    width, height = left + n * cell + 10, top + n * cell + 10
    body = [f"<g {FONT}>"]
    for i, label in enumerate(labels):
        body.append(
            f'<text x="{left - 6}" y="{top + i * cell + cell / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(_shorten(label, 18))}</text>'
        )
        cx = left + i * cell + cell / 2
        body.append(
            f'<text transform="translate({cx:.1f},{top - 6}) rotate(-45)">'
            f"{escape(_shorten(label, 18))}</text>"
        )
    for i in range(n):
        for j in range(n):
            value = 1.0 if i == j else values.get((i, j), values.get((j, i)))
            body.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 2}" '
                f'height="{cell - 2}" fill="{_cell_colour(value)}"/>'
            )
            if value is not None and i != j:
                colour = "#fff" if abs(value) > 0.55 else "#1d2330"
                body.append(
                    f'<text x="{left + j * cell + cell / 2 - 1:.1f}" '
                    f'y="{top + i * cell + cell / 2 + 3:.1f}" text-anchor="middle" '
                    f'font-size="10" fill="{colour}">{value:.2f}</text>'
                )
    body.append("</g>")
    return _svg(width, height, title, body)


def scatter(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 300,
    height: int = 220,
) -> SafeString:
    """Points with both axes through zero, for metric difference against human preference."""
    left, right, top, bottom = 40, 10, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [p[0] for p in points] or [0.0]
    ys = [p[1] for p in points] or [0.0]
    x_span = max(abs(min(xs)), abs(max(xs))) or 1.0
    y_span = max(abs(min(ys)), abs(max(ys))) or 1.0

    def sx(v: float) -> float:
        return left + (v + x_span) / (2 * x_span) * plot_w

    def sy(v: float) -> float:
        return top + (y_span - v) / (2 * y_span) * plot_h

    body = [
        f"<g {FONT}>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="{LINE}"/>',
        f'<line x1="{left}" x2="{left + plot_w}" y1="{_num(sy(0))}" y2="{_num(sy(0))}" '
        f'stroke="{LINE}"/>',
        f'<line x1="{_num(sx(0))}" x2="{_num(sx(0))}" y1="{top}" y2="{top + plot_h}" '
        f'stroke="{LINE}"/>',
    ]
    for px, py in points:
        body.append(
            f'<circle cx="{_num(sx(px))}" cy="{_num(sy(py))}" r="2.5" fill="{ACCENT}" '
            f'fill-opacity="0.45"/>'
        )
    body += [
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'fill="{MUTED}">{escape(x_label)} (±{x_span:.2g})</text>',
        f'<text transform="translate(12,{top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="{MUTED}">{escape(y_label)} (±{y_span:.2g})</text>',
        "</g>",
    ]
    return _svg(width, height, title, body)


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


def _tick_labels(ticks: list[float]) -> list[str]:
    """One format for all the values of an axis: whole numbers, decimals to the tick step, or
    for tiny values such as learning rates one power of ten (``0.5e-4``, ``1.0e-4``)."""
    if all(t == int(t) and abs(t) < 1e6 for t in ticks):
        return [str(int(t)) for t in ticks]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else abs(ticks[0])  # nice_ticks: even steps
    step_exponent = math.floor(math.log10(step) + 1e-9)
    biggest = max(abs(t) for t in ticks)
    if biggest < 1e-2:
        exponent = math.floor(math.log10(biggest) + 1e-9)
        decimals = max(1, exponent - step_exponent)
        return [f"{t / 10**exponent:.{decimals}f}e{exponent}" if t else "0" for t in ticks]
    return [f"{t:.{max(0, -step_exponent)}f}" for t in ticks]


def loss_curve_svg(
    series: dict[str, list[tuple[float, float]]],
    *,
    y_label: str = "loss",
    width: int = 640,
    height: int = 240,
) -> SafeString:
    """An ``<svg>`` of a run's curves over training steps: one line per series of (step, value)
    points, axes with tick values and titles, and a legend when there is more than one line.
    The run page draws the learning rate and the gradient norm with it too."""
    series = {name: values for name, values in series.items() if values}
    points = [p for values in series.values() for p in values]
    title = ", ".join(series) or y_label
    if not points:
        placeholder = (
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
            f'fill="{MUTED}">no points yet</text>'
        )
        return _svg(width, height, title, [placeholder], css_class="loss-chart")

    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(p[1] for p in points), max(p[1] for p in points)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high == y_low:
        pad = abs(y_low) * 0.1 or 0.5
        y_low, y_high = y_low - pad, y_high + pad
    # Steps are whole numbers: a tick at step 1.5 would mark nothing.
    x_ticks = [x for x in nice_ticks(x_low, x_high) if x == int(x)] or [x_low]
    y_ticks = nice_ticks(y_low, y_high)
    x_low, x_high = min(x_low, x_ticks[0]), max(x_high, x_ticks[-1])
    y_low, y_high = min(y_low, y_ticks[0]), max(y_high, y_ticks[-1])
    plot_w = width - LOSS_MARGIN_LEFT - LOSS_MARGIN_RIGHT
    plot_h = height - LOSS_MARGIN_TOP - LOSS_MARGIN_BOTTOM

    def sx(x: float) -> float:
        return LOSS_MARGIN_LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return LOSS_MARGIN_TOP + (y_high - y) / (y_high - y_low) * plot_h

    parts = []
    bottom, right = LOSS_MARGIN_TOP + plot_h, LOSS_MARGIN_LEFT + plot_w
    for y, label in zip(y_ticks, _tick_labels(y_ticks), strict=True):
        parts.append(
            f'<line x1="{LOSS_MARGIN_LEFT}" x2="{right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" '
            f'stroke="{LINE}"/><text class="tick-y" x="{LOSS_MARGIN_LEFT - 6}" '
            f'y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11" fill="{MUTED}">{label}</text>'
        )
    for x, label in zip(x_ticks, _tick_labels(x_ticks), strict=True):
        parts.append(
            f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{bottom}" y2="{bottom + 4}" '
            f'stroke="{MUTED}"/><text class="tick-x" x="{sx(x):.1f}" y="{bottom + 16}" '
            f'text-anchor="middle" font-size="11" fill="{MUTED}">{label}</text>'
        )
    parts.append(
        f'<line x1="{LOSS_MARGIN_LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" '
        f'stroke="{MUTED}"/><line x1="{LOSS_MARGIN_LEFT}" x2="{LOSS_MARGIN_LEFT}" '
        f'y1="{LOSS_MARGIN_TOP}" y2="{bottom}" stroke="{MUTED}"/>'
    )
    parts.append(
        f'<text class="axis-title-x" x="{LOSS_MARGIN_LEFT + plot_w / 2:.1f}" y="{bottom + 34}" '
        f'text-anchor="middle" font-size="12" fill="{INK}">step</text>'
        f'<text class="axis-title-y" transform="translate(14,{LOSS_MARGIN_TOP + plot_h / 2:.1f}) '
        f'rotate(-90)" text-anchor="middle" font-size="12" fill="{INK}">{escape(y_label)}</text>'
    )
    for number, (name, values) in enumerate(series.items()):
        colour = SERIES[number % len(SERIES)]
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
        if len(series) > 1:
            legend_y = LOSS_MARGIN_TOP + 6 + 16 * number
            parts.append(
                f'<rect x="{right - 130}" y="{legend_y - 8}" width="10" height="10" '
                f'fill="{colour}"/><text x="{right - 115}" y="{legend_y + 1}" font-size="12" '
                f'fill="{INK}">{escape(name)}</text>'
            )
    return _svg(width, height, title, parts, css_class="loss-chart")
