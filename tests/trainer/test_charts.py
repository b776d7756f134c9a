from xml.etree import ElementTree

from trainer.charts import loss_curve_svg, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def test_ticks_are_round_numbers_covering_the_range():
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0.13, 0.87) == [0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_points_are_placed_inside_the_plot_area():
    svg = loss_curve_svg({"train": [(10, 0.0), (0, 1.0)]}, width=640, height=240)
    line = ElementTree.fromstring(svg).find(f"{SVG}polyline")
    # x 0..10 maps to 56..628 (margins 56 and 12); y 1..0 maps to 12..206 (margins 12, 34).
    assert line.get("points") == "56.0,12.0 628.0,206.0"
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
