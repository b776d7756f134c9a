"""Page requests that carry a NUL character are refused before any view reads them.

No field of evalhub accepts NUL, and PostgreSQL cannot store it in text or look it up: a NUL in a
query parameter or a form field would reach a lookup (a dataset's name) and fail there as a
server error. Here it is a 400 that names the problem. The API is left to its JSON parser
(``evalhub.api.parsers``), so that it answers 401/403 before it reads a body; uploaded files are
not read, since a file may hold NUL bytes.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

MESSAGE = "The request contains a NUL character (\\u0000), which no field accepts."


def strings(value: Any) -> Iterator[str]:
    """Every string in a parsed JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def _fields(query: Any) -> Iterable[str]:
    for key, values in query.lists():
        yield key
        yield from values


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            fields = list(_fields(request.GET))
            if request.method == "POST" and request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                fields += _fields(request.POST)
            if any("\x00" in field for field in fields):
                return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
