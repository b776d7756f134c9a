"""The browsable API without live links in data.

DRF's page shows the response body through Django's ``urlize``, which turns every URL or e-mail
address in it into a link, model outputs and rater comments included: a model that writes
``https://evil.example`` would get a clickable link inside evalhub's own pages. Here the body is
escaped first, links to this site are written out as links (the API index and ``next`` still
work), and every other ``.``, ``:`` and ``@`` becomes a character reference: the browser shows
the same characters, and ``urlize`` finds nothing left to link.
"""

import re
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from rest_framework.renderers import BrowsableAPIRenderer

_DISARM = str.maketrans({".": "&#46;", ":": "&#58;", "@": "&#64;"})


def inert_content(text: str, *, origin: str) -> SafeString:
    """``text`` escaped, with only the URLs that start with ``origin`` as links."""
    escaped = escape(text)
    own_url = re.compile(re.escape(escape(origin)) + r"[^\s\"'<>&]*")
    parts, last = [], 0
    for match in own_url.finditer(escaped):
        parts.append(escaped[last : match.start()])
        url = match.group(0)
        parts.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    parts.append(escaped[last:])
    return mark_safe("".join(parts).translate(_DISARM))


class InertBrowsableAPIRenderer(BrowsableAPIRenderer):
    def get_context(self, data: Any, accepted_media_type: str, renderer_context: dict) -> dict:
        context = super().get_context(data, accepted_media_type, renderer_context)
        origin = renderer_context["request"].build_absolute_uri("/")
        context["content"] = inert_content(context["content"], origin=origin)
        return context
