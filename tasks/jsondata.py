"""Any result as plain JSON data: the one encoder behind ``--json`` and the archive.

JSON has no NaN or infinity, and results carry both (a failed fit's R², an
infinite cost).  Where the value is *shown* (``--json`` output) a non-finite
float becomes ``null``; where it must *survive a round trip* (the archive's
dict columns) it becomes the string ``"NaN"``, ``"Infinity"`` or
``"-Infinity"``.  NumPy scalars and arrays become Python numbers and lists,
tuples become lists, dict keys become strings, and any other object becomes
its ``str()``, so encoding a result never fails on an odd diagnostic value.
"""

from __future__ import annotations

import math
from typing import Any, Literal

NonFinite = Literal["null", "string"]

_SPELLING = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def plain(value: Any, non_finite: NonFinite = "null") -> Any:
    """``value`` as data ``json.dumps(..., allow_nan=False)`` accepts."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return None if non_finite == "null" else _SPELLING[repr(float(value))]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, dict):
        return {str(key): plain(item, non_finite) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item, non_finite) for item in value]
    if hasattr(value, "tolist"):  # NumPy scalars and arrays (float32, int64, bool_)
        return plain(value.tolist(), non_finite)
    return str(value)
