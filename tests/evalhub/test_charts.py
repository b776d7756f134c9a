import math
import re
from html.parser import HTMLParser
from xml.etree import ElementTree

import pytest

from evalhub.charts import Bar, heatmap, interval_bars, loss_curve_svg, nice_ticks, scatter

SVG = "{http://www.w3.org/2000/svg}"

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(svg: str) -> _Tags:
    parser = _Tags()
    parser.feed(svg)
    return parser


def _assert_inert(svg: str) -> None:
    parsed = _parse(svg)
    for tag, attrs in parsed.tags:
        assert tag not in {"script", "img", "foreignobject"}
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    assert "<script" not in svg


def test_interval_bars_escape_labels_and_notes():
    svg = interval_bars([Bar(HOSTILE, 0.6, 0.5, 0.7, note=HOSTILE)], title=HOSTILE)
    _assert_inert(svg)
    # the full label survives, escaped, in the tooltip title
    assert HOSTILE in "".join(_parse(svg).text)


def test_interval_bars_place_value_and_whisker_on_the_axis():
    # plot spans x = 230 … 230 + (640 − 230 − 100) = 540; 0.5 → 385, 0.25 → 307.5,
    # 0.75 → 462.5; the one row spans y = 8 … 34, its middle at 21
    svg = interval_bars([Bar("x", 0.5, 0.25, 0.75)], title="t")
    rect = next(attrs for tag, attrs in _parse(svg).tags if tag == "rect")
    assert (float(rect["x"]), float(rect["width"])) == (230.0, 155.0)
    assert 'd="M307.5 21.0H462.5' in svg


def test_long_labels_are_shortened_with_an_ellipsis_and_kept_whole_in_a_tooltip():
    # 218 px of label column at 7.2 px a character: 30 characters, the last an ellipsis
    svg = interval_bars([Bar("a" * 60, 0.5)], title="t")
    assert ">" + "a" * 29 + "…<" in svg
    assert "<title>" + "a" * 60 + "</title>" in svg


def test_long_bar_labels_wrap_at_spaces_onto_two_lines():
    label = "qlora-smollm2-135m-support-r16 vs smollm2-135m-instruct"
    svg = interval_bars([Bar(label, 0.5)], title="t")
    lines = [t.text for t in ElementTree.fromstring(svg).iter(f"{SVG}tspan")]
    assert lines == ["qlora-smollm2-135m-support-r16", "vs smollm2-135m-instruct"]


def test_heatmap_escapes_rater_names_and_greys_missing_cells():
    svg = heatmap([HOSTILE, "bob"], {(0, 1): None}, title="κ")
    _assert_inert(svg)
    assert 'fill="#eceef2"' in svg


def test_heatmap_prints_values_off_the_diagonal():
    svg = heatmap(["ann", "bob"], {(0, 1): 0.4123}, title="κ")
    assert svg.count(">0.41<") == 2  # both halves of the symmetric matrix


def test_scatter_escapes_axis_labels_and_draws_every_point():
    svg = scatter([(0.1, 0.5), (-0.2, -0.25), (0.0, 0.0)], title=HOSTILE, x_label=HOSTILE,
                  y_label="human")  # fmt: skip
    _assert_inert(svg)
    assert svg.count("<circle") == 3


def test_ticks_are_round_numbers_covering_the_range():
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0.13, 0.87) == [0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_points_are_placed_inside_the_plot_area():
    svg = loss_curve_svg({"train": [(10, 0.0), (0, 1.0)]}, width=640, height=240)
    line = ElementTree.fromstring(svg).find(f"{SVG}polyline")
    # x 0..10 maps to 72..628 (margins 72 and 12); y 1..0 maps to 12..198 (margins 12, 42).
    assert line.get("points") == "72.0,12.0 628.0,198.0"
    assert line.get("data-series") == "train"


def test_every_series_gets_a_line_and_a_legend_and_axes_get_tick_labels():
    svg = loss_curve_svg({"train loss": [(1, 2.5), (2, 2.0)], "validation loss": [(2, 2.2)]})
    root = ElementTree.fromstring(svg)
    assert [p.get("data-series") for p in root.iter(f"{SVG}polyline")] == [
        "train loss",
        "validation loss",
    ]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "train loss" in texts and "validation loss" in texts
    assert "1" in texts and "2" in texts  # x ticks (steps)
    assert root.get("role") == "img"


def test_labels_are_escaped():
    svg = loss_curve_svg({"<script>alert(1)</script>": [(0, 1.0), (1, 0.5)]})
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ElementTree.fromstring(svg)  # still well-formed


def test_no_points_gives_a_placeholder():
    svg = loss_curve_svg({"train": []})
    assert "no points yet" in svg
    ElementTree.fromstring(svg)


def _texts_of_class(svg: str, css_class: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    return [t.text for t in root.iter(f"{SVG}text") if t.get("class") == css_class]


def test_both_axes_carry_their_title_and_tick_values():
    svg = loss_curve_svg({"train loss": [(0, 2.0), (40, 1.2)]})
    assert _texts_of_class(svg, "axis-title-x") == ["step"]
    assert _texts_of_class(svg, "axis-title-y") == ["loss"]
    assert _texts_of_class(svg, "tick-x") == ["0", "10", "20", "30", "40"]
    assert _texts_of_class(svg, "tick-y") == ["1.2", "1.4", "1.6", "1.8", "2.0"]


def test_a_learning_rate_axis_reads_in_powers_of_ten():
    svg = loss_curve_svg({"learning rate": [(1, 0.0), (5, 2e-4)]}, y_label="learning rate")
    assert _texts_of_class(svg, "axis-title-y") == ["learning rate"]
    assert _texts_of_class(svg, "tick-y") == ["0", "0.5e-4", "1.0e-4", "1.5e-4", "2.0e-4"]
    fine = loss_curve_svg({"learning rate": [(1, 1e-4), (2, 1.2e-4)]}, y_label="learning rate")
    assert _texts_of_class(fine, "tick-y") == [
        "1.00e-4",
        "1.05e-4",
        "1.10e-4",
        "1.15e-4",
        "1.20e-4",
    ]
    assert [p.get("data-series") for p in ElementTree.fromstring(svg).iter(f"{SVG}polyline")] == [
        "learning rate"
    ]


def test_a_single_line_needs_no_legend_beside_its_axis_title():
    svg = loss_curve_svg({"gradient norm": [(1, 3.0), (2, 1.0)]}, y_label="gradient norm")
    assert ElementTree.fromstring(svg).find(f"{SVG}rect") is None
    assert [t for t in _parse(svg).text if t == "gradient norm"] == [
        "gradient norm",
        "gradient norm",
    ]


def test_a_series_without_points_gets_no_line_and_no_legend_entry():
    svg = loss_curve_svg({"train loss": [(1, 2.0), (2, 1.5)], "validation loss": []})
    assert "validation loss" not in svg
    assert ElementTree.fromstring(svg).find(f"{SVG}rect") is None


LONG = "qlora-smollm2-135m-instruct-support-tickets-r16"


def _texts(svg: str) -> list[tuple[str, list[tuple[float, float]]]]:
    """Every text line of the chart (without tooltips) with the corners of its box, estimated
    at 0.6 em a character, 0.8 em above and 0.2 em below the baseline, after any rotation."""
    root = ElementTree.fromstring(svg)
    found = []

    def walk(element, size, anchor):
        size = float(element.get("font-size", size))
        anchor = element.get("text-anchor", anchor)
        if element.tag != f"{SVG}text":
            for child in element:
                walk(child, size, anchor)
            return
        spans = list(element.iter(f"{SVG}tspan"))
        lines = [(float(t.get("x")), float(t.get("y")), t.text or "") for t in spans] or [
            (
                float(element.get("x", 0)),
                float(element.get("y", 0)),
                (element.text or "") + "".join(c.tail or "" for c in element),
            )
        ]
        move = re.fullmatch(
            r"translate\(([-\d.]+),([-\d.]+)\)(?: rotate\(([-\d.]+)\))?",
            element.get("transform", "translate(0,0)"),
        )
        dx, dy, angle = float(move[1]), float(move[2]), math.radians(float(move[3] or 0))
        for x, y, text in lines:
            w = len(text) * size * 0.6
            x0 = x - {"start": 0, "middle": w / 2, "end": w}[anchor]
            corners = []
            for cx, cy in ((x0, y - 0.8 * size), (x0 + w, y - 0.8 * size), (x0, y + 0.2 * size),
                           (x0 + w, y + 0.2 * size)):  # fmt: skip
                rx = cx * math.cos(angle) - cy * math.sin(angle)
                ry = cx * math.sin(angle) + cy * math.cos(angle)
                corners.append((rx + dx, ry + dy))
            found.append((text, corners))

    walk(root, 12.0, "start")
    return found


def _assert_inside(svg: str) -> list[str]:
    _, _, width, height = (float(v) for v in ElementTree.fromstring(svg).get("viewBox").split())
    texts = _texts(svg)
    for text, corners in texts:
        for x, y in corners:
            assert -0.5 <= x <= width + 0.5 and -0.5 <= y <= height + 0.5, (text, x, y, width)
    return [t for t, _ in texts]


CHARTS = {
    "win rates": lambda: interval_bars(
        [Bar(f"{LONG} vs smollm2-135m-instruct", 0.7, 0.55, 0.84, note="n = 10,000")],
        title="t",
    ),
    "criteria": lambda: interval_bars(
        [Bar(f"correctness: {LONG} − base", -1.2, -1.9, -0.4, note="n = 36")],
        title="t",
        domain=(-2.0, 2.0),
        reference=0.0,
        percent=False,
    ),
    "kappa, two raters": lambda: heatmap([LONG, "bob"], {(0, 1): 0.4}, title="κ"),
    "kappa, six raters": lambda: heatmap(
        [f"{LONG}-{i}" for i in range(6)], {(0, 1): 0.4}, title="κ"
    ),
    "metric scatter": lambda: scatter(
        [(-0.3, 0.0), (0.12, 1.0), (0.0, 0.5)],
        title="t",
        x_label=f"BERTScore F1: {LONG} − smollm2-135m-instruct",
        y_label=f"experts prefer {LONG}",
    ),
}


@pytest.mark.parametrize("name", CHARTS)
def test_no_text_of_a_chart_reaches_past_its_canvas(name):
    _assert_inside(CHARTS[name]())


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("win rates", {"0%", "20%", "40%", "60%", "80%", "100%"}),
        ("criteria", {"-2", "-1", "0", "1", "2"}),
        ("kappa, two raters", {"-1", "-0.5", "0", "0.5", "1"}),
        ("metric scatter", {"-0.5", "0", "+0.5", "0%", "50%", "100%"}),
    ],
)
def test_every_chart_shows_its_axis_values(name, values):
    assert values <= set(_assert_inside(CHARTS[name]()))


def test_shortened_chart_labels_keep_the_full_name_in_a_tooltip():
    for name in ("kappa, six raters", "metric scatter"):
        tooltips = [t.text for t in ElementTree.fromstring(CHARTS[name]()).iter(f"{SVG}title")]
        assert any(LONG in (t or "") for t in tooltips[1:]), name
