"""The API's JSON parser: refuses a body with a NUL character in any string (400), which no
field accepts and PostgreSQL cannot look up or store (a rater's username, a gold prompt)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from evalhub.middleware import MESSAGE, strings


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if any("\x00" in text for text in strings(data)):
            raise ParseError(MESSAGE)
        return data
