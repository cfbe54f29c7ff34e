"""Ways of asking a server for structured output, strongest first, and when to give one up.

Servers differ: OpenAI honours ``response_format`` of type ``json_schema``;
llama.cpp's server answers that with HTTP 500 (or 400) but takes
``json_object``; Ollama has its own ``format`` field; plain text works
everywhere (the reply parser is tolerant).  The client walks this ladder until
one form works and then keeps it for the rest of the campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

_OLLAMA_PORT = 11434
# Words in a server's error message that mean "I do not support that output format".
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar", "format")
# Errors that no weaker format can fix.
_NOT_FORMAT_ERRORS = frozenset({401, 403, 404, 408, 409, 429})


@dataclass(frozen=True)
class ResponseFormat:
    """One rung of the ladder and the request arguments it adds."""

    name: str  # "json_schema", "ollama", "json_object" or "text"

    def request_arguments(self, schema: dict[str, Any], schema_name: str) -> dict[str, Any]:
        if self.name == "json_schema":
            return {"response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            }}
        if self.name == "ollama":
            return {"extra_body": {"format": schema}}
        if self.name == "json_object":
            return {"response_format": {"type": "json_object"}}
        return {}


def format_ladder(choice: str, base_url: str | None) -> tuple[ResponseFormat, ...]:
    """The formats to try, in order: one if the user chose, else the ladder for this server."""
    if choice != "auto":
        return (ResponseFormat(choice),)
    names = ["json_schema", "json_object", "text"]
    if base_url and urlparse(base_url).port == _OLLAMA_PORT:
        names.insert(1, "ollama")
    return tuple(ResponseFormat(name) for name in names)


def is_format_rejection(status: int, message: str, confirmed: bool) -> bool:
    """Whether an HTTP error means "try a weaker format" rather than "retry" or "give up".

    A 400/422, or a 500 whose message mentions the format, always does.  Before
    any format has worked (``confirmed`` false), any other 4xx or 500 does too:
    servers report an unsupported format in many ways.
    """
    if status in _NOT_FORMAT_ERRORS:
        return False
    if status in (400, 422):
        return True
    lowered = message.lower()
    if status == 500 and any(word in lowered for word in _FORMAT_WORDS):
        return True
    return not confirmed and (400 <= status < 500 or status == 500)
