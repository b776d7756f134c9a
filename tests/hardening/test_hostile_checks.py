"""The inertness checks themselves catch what they are meant to catch."""

import pytest

from evalhub.api.renderers import inert_content
from tests.hardening.hostile import RLO, assert_csv_inert, assert_inert_html

LIVE_HTML = [
    '<div><script>alert("pwn")</script></div>',
    "<div><img src=x onerror=alert(1)></div>",
    '<p><a href="javascript:alert(1)">x</a></p>',
    '<p><a href="https://evil.example/x">x</a></p>',
    '<div hx-get="/admin/?pwn" hx-trigger="load">x</div>',
    '<textarea></textarea><b x="pwn-quote"></b>',
    f"<td>{RLO}abc <span>A is better</span></td>",
    f"{RLO}abc outside any block",
    f"<td><strong>{RLO}abc</strong> then more</td>",
]
INERT_HTML = [
    "<div>&lt;script&gt;alert(&quot;pwn&quot;)&lt;/script&gt;</div>",
    f'<div class="text-output">{RLO}abc</div><span>after the block</span>',
    f"<td><strong>#1</strong> {RLO}abc<div>reference</div></td>",
    f"<textarea>{RLO}abc</textarea> and more",
    '<script src="/static/vendor/htmx.js"></script>',
]


@pytest.mark.parametrize("html", LIVE_HTML)
def test_live_markup_links_and_leaking_overrides_are_caught(html):
    with pytest.raises(AssertionError):
        assert_inert_html(html)


@pytest.mark.parametrize("html", INERT_HTML)
def test_escaped_text_and_contained_overrides_pass(html):
    assert_inert_html(html)


def test_text_that_is_not_shown_is_caught():
    with pytest.raises(AssertionError):
        assert_inert_html("<p>something else</p>", shown=["<b>expected</b>"])


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2+3", "@SUM(1)", "\t=1", "\r=1"])
def test_live_csv_formulas_are_caught(cell):
    with pytest.raises(AssertionError):
        assert_csv_inert(f'a,b\r\nx,"{cell}"\r\n')


def test_neutralised_formulas_and_negative_numbers_pass():
    assert_csv_inert("a,b,c\r\n'=1+1,-0.25,'@x\r\n")


def test_browsable_content_links_only_this_sites_urls():
    text = '{"next": "http://testserver/api/x/?page=2", "t": "see https://evil.example/a <b>"}'
    html = inert_content(text, origin="http://testserver/")
    assert '<a href="http&#58;//testserver/api/x/?page=2">' in html
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert "evil.example" not in html  # written as evil&#46;example: shown, never linked
    assert html.count("<a ") == 1
