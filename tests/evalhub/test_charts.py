from html.parser import HTMLParser

from evalhub.charts import Bar, heatmap, interval_bars, scatter

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
    # plot spans x = 190 … 190 + (640 − 190 − 150) = 490; 0.5 → 340, 0.25 → 265, 0.75 → 415
    svg = interval_bars([Bar("x", 0.5, 0.25, 0.75)], title="t")
    rect = next(attrs for tag, attrs in _parse(svg).tags if tag == "rect")
    assert (float(rect["x"]), float(rect["width"])) == (190.0, 150.0)
    assert 'd="M265.0 34H415.0' in svg


def test_long_labels_are_shortened_with_an_ellipsis():
    svg = interval_bars([Bar("a" * 60, 0.5)], title="t")
    assert "a" * 27 + "…" in svg


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
