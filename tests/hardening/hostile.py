"""Hostile text and the checks that it stayed inert wherever it was rendered.

Each payload carries a ``pwn`` marker: finding the marker in a tag name or an attribute means
the text became markup; finding the payload in the page's text means it was shown as text.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

RLO, PDF_MARK = "\u202e", "\u202c"  # right-to-left override, pop directional formatting
HUGE_LINE = "pwn-huge " + "L" * (1024 * 1024)  # one 1 MB line, no newline, no space to wrap at

PAYLOADS = {
    "script": '<script>alert("pwn-script")</script>',
    "handlers": (
        "<img src=x onerror=alert('pwn-img')><div onmouseover=\"alert('pwn-div')\">hover</div>"
        '<div hx-get="/admin/?pwn" hx-trigger="load">pwn-htmx</div><svg onload=alert(1)>pwn-svg'
    ),
    "breakout": '"><iframe srcdoc="pwn-iframe"></iframe></textarea><b x=\'pwn-quote\'>',
    "markdown": (
        "[click me](javascript:alert('pwn-md')) ![pixel](https://evil.example/pwn.png) "
        '<a href="javascript:alert(1)">pwn-link</a> [ref]: https://evil.example/pwn'
    ),
    "rtl": f"Invoice total {RLO}0001${PDF_MARK} pwn-rtl, file {RLO}fdp.exe",
    "formula": '=HYPERLINK("https://evil.example/pwn","click")',
    "huge": HUGE_LINE,
}
# A study's guidelines are Markdown: scripts, raw HTML, script links in every spelling and
# images that would run code or call home must all come out as text.
HOSTILE_MARKDOWN = (
    "## Rules pwn-heading\n\n"
    '<script>alert("pwn-script")</script>\n\n'
    "[run](javascript:alert('pwn-js')) [caps](JaVaScRiPt:alert('pwn-caps')) "
    "[entity](&#106;avascript:alert('pwn-entity')) [data](data:text/html;base64,cHdu) "
    "[vb](vbscript:msgbox('pwn-vb')) <javascript:alert('pwn-autolink')>\n\n"
    "<img src=x onerror=alert('pwn-img')> <div onmouseover=\"alert('pwn-div')\">pwn-div</div>\n\n"
    "![pwn-alt](x\" onerror=\"alert('pwn-onerror')) ![tracker](https://evil.example/pwn.png)\n\n"
    '<a href="javascript:alert(1)">pwn-link</a> <iframe srcdoc="pwn-iframe"></iframe>\n\n'
    "[The style guide](https://example.org/style)"
)
# What a rater may type into the comment and the flag reason: formulas for spreadsheets.
FORMULA_COMMENTS = [
    '=HYPERLINK("https://evil.example/pwn","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
# Elements whose boundaries end a bidi paragraph (UAX #9 rule X8 applies at block boundaries),
# and elements that isolate their content: an override inside cannot reorder anything outside.
BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "legend",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
ISOLATING = frozenset({"bdi", "textarea", "title", "option"})
VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"]
)
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "srcdoc", "data", "xlink:href"})


@dataclass
class _Override:
    """A text run holding a right-to-left override, inside the block at ``depth`` of the stack."""

    tag: str
    depth: int
    open: bool = True
    followed: str = ""  # what came after it inside the same block, if anything


@dataclass
class Page(HTMLParser):
    """The tags, attributes, text and right-to-left overrides of one HTML document."""

    tags: list[tuple[str, list[tuple[str, str | None]]]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    overrides: list[_Override] = field(default_factory=list)

    def __post_init__(self):
        super().__init__(convert_charrefs=True)
        self._stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        self._after(tag, block=tag in BLOCKS)
        if tag not in VOID:
            self._stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))
        self._after(tag, block=tag in BLOCKS)

    def handle_endtag(self, tag):
        if tag not in self._stack:
            return
        depth = len(self._stack) - 1 - self._stack[::-1].index(tag)
        for run in self.overrides:
            if run.open and (depth <= run.depth or tag in BLOCKS):
                run.open = False
        del self._stack[depth:]

    def handle_data(self, data):
        if self._stack and self._stack[-1] == "script":
            self.scripts.append(data)
            return
        if data.strip():
            self._after(data.strip()[:40], block=False)
        self.texts.append(data)
        if RLO in data:
            self._override()

    def _override(self):
        for depth in range(len(self._stack) - 1, -1, -1):
            tag = self._stack[depth]
            if tag in ISOLATING:
                return  # contained whatever follows
            if tag in BLOCKS:
                self.overrides.append(_Override(tag, depth))
                return
        self.overrides.append(_Override("#document", -1))

    def _after(self, what: str, *, block: bool):
        """A block boundary ends every open override's paragraph; anything else shares it."""
        for run in self.overrides:
            if not run.open:
                continue
            if block:
                run.open = False
            elif not run.followed:
                run.followed = what

    @property
    def text(self) -> str:
        return "".join(self.texts)


def parse_html(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def _marked(text: str | None) -> bool:
    """Whether a payload's ``pwn`` marker is in ``text``. Runs of 32+ letters and digits are
    left out first: a random CSRF token holds "pwn" once in about 4,000 pages."""
    return "pwn" in re.sub(r"[A-Za-z0-9]{32,}", "", text or "")


def assert_inert_html(html: str, *, shown: tuple[str, ...] | list[str] = ()) -> Page:
    """No payload became a tag, an attribute or a script; each text of ``shown`` is on the page
    as text; every right-to-left override is confined to its own block or isolate."""
    page = parse_html(html)
    for tag, attrs in page.tags:
        assert "pwn" not in tag, tag
        assert tag not in {"iframe", "object", "embed", "frame"}, tag
        if tag == "img":  # the admin's own icons only
            assert (dict(attrs).get("src") or "").startswith("/static/"), attrs
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            assert "pwn" not in name, (tag, name, value)
            # A form field's value is data (the rater's own text, escaped); nothing else may be.
            if not (tag == "input" and name == "value"):
                assert not _marked(value), (tag, name, value)
            if name in URL_ATTRIBUTES or name.startswith("hx-"):
                lowered = (value or "").strip().lower()
                assert not lowered.startswith(("javascript:", "data:", "vbscript:")), value
                assert "evil.example" not in lowered, value
        if tag == "script":
            # Only this site's script files, or inert JSON data blocks.
            src, kind = dict(attrs).get("src") or "", dict(attrs).get("type") or ""
            own_file = src.startswith("/") and not src.startswith("//")
            assert own_file or kind == "application/json", attrs
    for script in page.scripts:
        assert not _marked(script)
    text = page.text
    for expected in shown:
        assert expected in text, expected[:80]
    for run in page.overrides:
        assert run.depth >= 0, "a right-to-left override outside any block"
        assert not run.followed, f"{run.followed!r} follows an override inside <{run.tag}>"
    return page


def assert_csv_inert(body: str) -> list[list[str]]:
    """Every text cell that a spreadsheet would evaluate starts with an apostrophe."""
    rows = list(csv.reader(io.StringIO(body, newline="")))
    for row in rows:
        for cell in row:
            if cell.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(cell):
                raise AssertionError(f"formula-like cell left live: {cell[:60]!r}")
    return rows


def strings_in(value) -> list[str]:
    """Every string anywhere in a decoded JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []
