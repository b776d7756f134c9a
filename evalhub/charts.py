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
FONT_SIZE = 12
TICK_SIZE = 11
# Text width is estimated, not measured (no fonts on the server): 0.6 em a character is wider
# than system-ui's average, so an estimated fit is a real fit.
CHAR_EM = 0.6
ACCENT = "#2f5bd3"
MUTED = "#5b6475"
LINE = "#dde1e8"
INK = "#1d2330"
# Line colours for several series, the accent first.
SERIES = (ACCENT, "#c0392b", "#1f8a4c", "#b7791f", "#7b3fb5", "#0f7c8c")
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


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Estimated width in px of ``text`` at font size ``size``."""
    return len(text) * size * CHAR_EM


def _fit(text: str, width: float, size: float = FONT_SIZE) -> str:
    """``text`` cut to fit ``width`` px, with an ellipsis where it was cut."""
    limit = max(int(width / (size * CHAR_EM)), 2)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _wrap(text: str, width: float, lines: int = 2, size: float = FONT_SIZE) -> list[str]:
    """``text`` broken at spaces (or, in a long word, after a hyphen) into at most ``lines``
    lines of ``width`` px; the last line is cut with an ellipsis if the text does not fit."""
    limit = max(int(width / (size * CHAR_EM)), 2)
    out: list[str] = []
    rest = text
    while rest and len(out) < lines - 1 and len(rest) > limit:
        # The latest break that fits: at a space (dropped) or after a hyphen (kept).
        space, hyphen = rest.rfind(" ", 0, limit + 1), rest.rfind("-", 0, limit) + 1
        if max(space, hyphen) <= 0:
            break
        if space >= hyphen:
            out.append(rest[:space])
            rest = rest[space + 1 :]
        else:
            out.append(rest[:hyphen])
            rest = rest[hyphen:]
    out.append(_fit(rest, width, size))
    return out


def _label(x: float, y: float, text: str, shown: list[str], *, anchor: str, extra: str = "") -> str:
    """A text element showing ``shown`` (one line each, 14 px apart, the block centred on ``y``)
    whose <title> carries the full ``text`` when it had to be shortened."""
    title = f"<title>{escape(text)}</title>" if " ".join(shown) != text else ""
    first = y - 7 * (len(shown) - 1)
    spans = "".join(
        f'<tspan x="{_num(x)}" y="{_num(first + 14 * i)}">{escape(line)}</tspan>'
        for i, line in enumerate(shown)
    )
    return f'<text text-anchor="{anchor}"{extra}>{title}{spans}</text>'


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


def _value_label(value: float, *, percent: bool) -> str:
    return f"{value * 100:.0f}%" if percent else f"{value:g}"


def interval_bars(
    bars: Sequence[Bar],
    *,
    title: str,
    domain: tuple[float, float] = (0.0, 1.0),
    reference: float | None = 0.5,
    percent: bool = True,
    width: int = 640,
) -> SafeString:
    """Horizontal bars with interval whiskers, e.g. win rates with their 95 % intervals, over
    an axis with round tick values. Labels wrap onto up to three lines; what still does not fit
    is cut with an ellipsis and shown whole in a tooltip."""
    label_w, note_w, top = 230, 100, 8
    plot_w = width - label_w - note_w
    wrapped = [_wrap(bar.label, label_w - 12, lines=3) for bar in bars]
    row_h = 12 + 14 * max((len(lines) for lines in wrapped), default=1)
    axis_y = top + row_h * max(len(bars), 1)
    height = axis_y + 22
    lo, hi = domain

    def x(v: float) -> float:
        return label_w + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    body = [f"<g {FONT}>"]
    for tick in nice_ticks(lo, hi):
        body.append(
            f'<line x1="{_num(x(tick))}" x2="{_num(x(tick))}" y1="{top}" y2="{axis_y + 4}" '
            f'stroke="{LINE}"/><text x="{_num(x(tick))}" y="{axis_y + 17}" '
            f'text-anchor="middle" font-size="{TICK_SIZE}" fill="{MUTED}">'
            f"{escape(_value_label(tick, percent=percent))}</text>"
        )
    body.append(
        f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{axis_y}" y2="{axis_y}" '
        f'stroke="{MUTED}"/>'
    )
    if reference is not None:
        body.append(
            f'<line x1="{_num(x(reference))}" x2="{_num(x(reference))}" y1="{top}" '
            f'y2="{axis_y}" stroke="{MUTED}" stroke-dasharray="4 3"/>'
        )
    for i, (bar, lines) in enumerate(zip(bars, wrapped, strict=True)):
        y = top + i * row_h
        mid = y + row_h / 2
        body.append(_label(label_w - 8, mid + 4, bar.label, lines, anchor="end"))
        if bar.value is not None:
            base = x(max(lo, min(0.0, hi)))
            body.append(
                f'<rect x="{_num(min(base, x(bar.value)))}" y="{_num(mid - 7)}" '
                f'width="{_num(abs(x(bar.value) - base))}" height="14" fill="{ACCENT}" '
                f'fill-opacity="0.75"/>'
            )
        if bar.low is not None and bar.high is not None:
            x1, x2 = x(bar.low), x(bar.high)
            body.append(
                f'<path d="M{_num(x1)} {_num(mid)}H{_num(x2)}M{_num(x1)} {_num(mid - 6)}'
                f'V{_num(mid + 6)}M{_num(x2)} {_num(mid - 6)}V{_num(mid + 6)}" '
                f'stroke="{INK}" stroke-width="1.5" fill="none"/>'
            )
        if bar.note:
            note = _fit(bar.note, note_w - 10)
            body.append(
                _label(
                    label_w + plot_w + 8,
                    mid + 4,
                    bar.note,
                    [note],
                    anchor="start",
                    extra=f' fill="{MUTED}"',
                )
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


HEATMAP_LABEL_PX = 130
LEGEND_VALUES = (-1.0, -0.5, 0.0, 0.5, 1.0)


def heatmap(
    labels: Sequence[str],
    values: dict[tuple[int, int], float | None],
    *,
    title: str,
    cell: int = 34,
) -> SafeString:
    """A symmetric matrix (e.g. Cohen's κ per pair of raters); missing cells are grey. Column
    labels run up at 45°; the canvas leaves room for the longest, and a legend below gives the
    colour scale's values."""
    n = len(labels)
    shown = [_fit(label, HEATMAP_LABEL_PX) for label in labels]
    longest = max((text_width(s) for s in shown), default=0.0)
    slant = longest * math.sqrt(0.5)  # a 45° label's reach along either axis
    # A slanted label's glyphs stand a font-height beside its baseline, above the slant.
    left, top = int(longest) + 12, int(slant + FONT_SIZE) + 10
    matrix_right = left + n * cell
    legend_y = top + n * cell + 16
    width = int(max(matrix_right + slant - cell / 2, left + 5 * cell + 10)) + 12
    height = legend_y + 34
    body = [f"<g {FONT}>"]
    for i, (label, short) in enumerate(zip(labels, shown, strict=True)):
        tip = f"<title>{escape(label)}</title>" if short != label else ""
        body.append(
            f'<text x="{left - 6}" y="{top + i * cell + cell / 2 + 4:.1f}" '
            f'text-anchor="end">{tip}{escape(short)}</text>'
        )
        cx = left + i * cell + cell / 2
        body.append(
            f'<text transform="translate({cx:.1f},{top - 6}) rotate(-45)">{tip}'
            f"{escape(short)}</text>"
        )
    for i in range(n):
        for j in range(n):
            value = 1.0 if i == j else values.get((i, j), values.get((j, i)))
            body.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 2}" '
                f'height="{cell - 2}" fill="{_cell_colour(value)}"/>'
            )
            if value is not None and i != j:
                colour = "#fff" if abs(value) > 0.55 else INK
                body.append(
                    f'<text x="{left + j * cell + cell / 2 - 1:.1f}" '
                    f'y="{top + i * cell + cell / 2 + 3:.1f}" text-anchor="middle" '
                    f'font-size="10" fill="{colour}">{value:.2f}</text>'
                )
    for k, value in enumerate(LEGEND_VALUES):
        x = left + k * cell
        body.append(
            f'<rect x="{x}" y="{legend_y}" width="{cell - 2}" height="10" '
            f'fill="{_cell_colour(value)}" stroke="{LINE}"/><text x="{x + cell / 2 - 1:.1f}" '
            f'y="{legend_y + 23}" text-anchor="middle" font-size="{TICK_SIZE}" '
            f'fill="{MUTED}">{value:g}</text>'
        )
    body.append("</g>")
    return _svg(width, height, title, body)


def _round_up(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 × 10^k that is at least ``value`` (1 for zero)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= value * (1 - 1e-9))


def scatter(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 340,
    height: int = 250,
) -> SafeString:
    """Items as points: x a difference centred on zero (a metric's, system − opponent), y a
    share in [0, 1] (the experts' preference for the system), with tick values on both axes and
    a dashed line at 50 %."""
    left, right, top, bottom = 58, 22, 10, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    x_span = _round_up(max((abs(p[0]) for p in points), default=0.0))

    def sx(v: float) -> float:
        return left + (v + x_span) / (2 * x_span) * plot_w

    def sy(v: float) -> float:
        return top + (1 - v) * plot_h

    axis_y = top + plot_h
    body = [
        f"<g {FONT}>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="{LINE}"/>',
        f'<line x1="{left}" x2="{left + plot_w}" y1="{_num(sy(0.5))}" y2="{_num(sy(0.5))}" '
        f'stroke="{MUTED}" stroke-dasharray="4 3"/>',
        f'<line x1="{_num(sx(0))}" x2="{_num(sx(0))}" y1="{top}" y2="{axis_y}" '
        f'stroke="{MUTED}" stroke-dasharray="4 3"/>',
    ]
    for tick in (-x_span, 0.0, x_span):
        body.append(
            f'<text x="{_num(sx(tick))}" y="{axis_y + 14}" text-anchor="middle" '
            f'font-size="{TICK_SIZE}" fill="{MUTED}">{tick:+.2g}</text>'.replace(">+0<", ">0<")
        )
    for tick in (0.0, 0.5, 1.0):
        body.append(
            f'<text x="{left - 5}" y="{_num(sy(tick) + 4)}" text-anchor="end" '
            f'font-size="{TICK_SIZE}" fill="{MUTED}">{tick * 100:.0f}%</text>'
        )
    for px, py in points:
        body.append(
            f'<circle cx="{_num(sx(px))}" cy="{_num(sy(py))}" r="2.5" fill="{ACCENT}" '
            f'fill-opacity="0.45"/>'
        )
    # The x label takes two lines if it must; the last sits 8 px above the bottom.
    x_lines, y_shown = _wrap(x_label, plot_w + right), _fit(y_label, plot_h)
    body += [
        _label(
            left + plot_w / 2,
            height - 8 - 7 * (len(x_lines) - 1),
            x_label,
            x_lines,
            anchor="middle",
            extra=f' fill="{MUTED}"',
        ),
        f'<text transform="translate(14,{top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="{MUTED}">'
        + (f"<title>{escape(y_label)}</title>" if y_shown != y_label else "")
        + f"{escape(y_shown)}</text>",
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
