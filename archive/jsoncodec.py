"""JSON for the archive's dict columns, with non-finite floats that survive a round trip.

Standard JSON has no NaN or infinity, and SQLite's JSON functions reject
Python's ``NaN``/``Infinity`` tokens.  So non-finite floats are stored as the
*strings* ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the JavaScript
spellings) and turned back into floats on reading.  The one ambiguity this
leaves: a diagnostic whose value is literally one of those three strings
reads back as a float.  NumPy scalars and arrays are stored as Python numbers
and lists; any other object is stored as its ``str()``, so writing a record
never fails because of an odd diagnostic value.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sld.tasks.jsondata import plain

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_json(value: Any) -> str:
    """Strict JSON text for ``value`` (non-finite floats become strings)."""
    return json.dumps(json_safe(value), allow_nan=False, separators=(",", ":"))


def from_json(text: str | None) -> Any:
    """The value ``to_json`` wrote, with non-finite floats restored."""
    if text is None:
        return None
    return _restore(json.loads(text))


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON-compatible data, non-finite floats as strings (see ``sld.tasks.jsondata``)."""
    return plain(value, non_finite="string")


def _restore(value: Any) -> Any:
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value
