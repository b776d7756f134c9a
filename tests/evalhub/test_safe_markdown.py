"""The guidelines' Markdown filter: formatting and ordinary links survive, nothing else does."""

import pytest

from evalhub.templatetags.safe_markdown import markdown


def test_formatting_lists_and_tables_render():
    html = markdown(
        "**Correct** first, *then* tone.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<strong>Correct</strong>" in html and "<em>then</em>" in html
    assert "<li>one</li>" in html and "<td>1</td>" in html


@pytest.mark.parametrize(
    "url", ["https://example.org/guide", "http://example.org/", "mailto:lead@example.org", "/rate/"]
)
def test_ordinary_links_open_in_a_new_tab_without_an_opener(url):
    assert markdown(f"[guide]({url})") == (
        f'<p><a href="{url}" target="_blank" rel="noopener noreferrer">guide</a></p>\n'
    )


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](data:text/html;base64,cHdu)",
        "[x](vbscript:msgbox(1))",
        "[x](file:///etc/passwd)",
        "<javascript:alert(1)>",
    ],
)
def test_links_to_other_schemes_stay_text(source):
    assert "<a" not in markdown(source)


def test_raw_html_is_text_and_images_are_their_alt_text():
    html = markdown(
        '<script>alert(1)</script>\n\n<b onclick="x">b</b> ![a "cat"](https://e.example/c.png)'
    )
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<b" not in html and "<img" not in html
    assert "a &quot;cat&quot;" in html and "e.example" not in html
