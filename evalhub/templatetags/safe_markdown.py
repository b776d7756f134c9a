"""``{{ text|markdown }}``: Markdown that a manager wrote (a study's guidelines) as safe HTML.

CommonMark plus tables, with raw HTML shown as text; links only to http(s), mailto or this
site, opening in a new tab so that a rater mid-item keeps their page; images as their alt text,
so that no page a rater opens loads anything from elsewhere.
"""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

register = template.Library()

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
# A scheme as browsers read one; a URL without one is relative to this site.
SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.IGNORECASE)


def _safe_link(url: str) -> bool:
    scheme = SCHEME.match(url.strip())
    return scheme is None or scheme.group(1).lower() in SAFE_SCHEMES


def _link_open(renderer, tokens, idx, options, env) -> str:
    tokens[idx].attrSet("target", "_blank")
    tokens[idx].attrSet("rel", "noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


def _image_as_alt_text(renderer, tokens, idx, options, env) -> str:
    return escape(renderer.renderInlineAsText(tokens[idx].children or [], options, env))


_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
_markdown.validateLink = _safe_link
_markdown.add_render_rule("link_open", _link_open)
_markdown.add_render_rule("image", _image_as_alt_text)


@register.filter(name="markdown")
def markdown(text: str) -> SafeString:
    # Safe: raw HTML is escaped by the parser, and links and images are vetted above.
    return mark_safe(_markdown.render(text or ""))
