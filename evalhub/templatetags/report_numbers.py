"""Template tags that print a number of the report by its path in the report dict.

``{% num report "analysis.pairs" i "win_rate" fmt="pct" %}`` looks the value up in the dict and
prints it rounded, inside a span whose ``data-key`` is the path and ``data-value`` the exact
JSON value. The page and the HTML export can only show numbers that are in the JSON, and a
test can check every one of them against the JSON export. When the path meets an
"insufficient data" result it prints that instead, with its reason and n.
"""

import json
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


def _walk(root: Any, parts: tuple[Any, ...]) -> tuple[Any, str]:
    """Follow the path; stop early at an insufficient-data result. Returns (value, key)."""
    keys: list[str] = []
    for part in parts:
        keys.extend(str(part).split("."))
    value = root
    walked: list[str] = []
    for key in keys:
        if isinstance(value, dict) and value.get("insufficient"):
            break
        value = value[int(key)] if isinstance(value, list) else value[key]
        walked.append(key)
    return value, ".".join(walked)


def _insufficient(value: dict, key: str) -> SafeString:
    return format_html(
        '<span class="insufficient" data-key="{}" data-insufficient="1" title="{}">'
        "insufficient data (n = {}, needs {})</span>",
        key,
        value["reason"],
        value["n"],
        value["needed"],
    )


def _format(value: float, fmt: str, digits: int) -> str:
    if fmt == "pct":
        return f"{value * 100:.{max(digits - 2, 0)}f}%"
    if fmt == "p":
        return "< 0.001" if value < 0.001 else f"{value:.3f}"
    if fmt == "int":
        return f"{int(value):,}"
    if fmt == "signed":
        return f"{value:+.{digits}f}"
    return f"{value:.{digits}f}"


@register.simple_tag
def num(root: Any, *parts: Any, fmt: str = "", digits: int = 3) -> SafeString:
    value, key = _walk(root, parts)
    if isinstance(value, dict) and value.get("insufficient"):
        return _insufficient(value, key)
    if value is None:
        return format_html('<span class="num" data-key="{}" data-value="null">—</span>', key)
    return format_html(
        '<span class="num" data-key="{}" data-value="{}">{}</span>',
        key,
        json.dumps(value),
        _format(value, fmt, digits),
    )


@register.simple_tag
def interval(root: Any, *parts: Any, fmt: str = "", digits: int = 3) -> SafeString:
    """``[low, high]`` of an interval result, or its insufficient-data notice."""
    value, key = _walk(root, parts)
    if isinstance(value, dict) and value.get("insufficient"):
        return _insufficient(value, key)
    return format_html(
        '<span class="interval" data-key="{}" data-low="{}" data-high="{}" title="{}">'
        "[{}, {}]</span>",
        key,
        json.dumps(value["low"]),
        json.dumps(value["high"]),
        value["method"],
        _format(value["low"], fmt, digits),
        _format(value["high"], fmt, digits),
    )
