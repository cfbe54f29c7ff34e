"""Finding candidate formulas in whatever a model answered.

Models do not always follow the requested format, and servers that cannot
enforce a schema return free text.  This module only *locates* formula text;
it never interprets it: every formula it finds is then parsed by
``parse_law`` (the only parser of formulas), which rejects anything unsafe.

Order of preference: JSON anywhere in the reply (bare, fenced or inside
prose; complete objects inside truncated JSON are kept, and a complete
``"formula": "..."`` string is salvaged even when its object was cut off),
then fenced code blocks, then lines labelled ``formula: ...``, then
``L = ...`` style lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_REPLY_CHARS = 100_000  # longer replies are cut: the scan must stay cheap
MAX_CANDIDATES = 64
_MAX_JSON_STARTS = 400

_FORMULA_KEYS = ("formula", "law", "expression")
_LIST_KEYS = ("candidates", "formulas", "laws", "proposals")
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n(.*?)```", re.DOTALL)
_SALVAGE = re.compile(
    r'"(?:formula|law|expression)"\s*:\s*"((?:[^"\\]|\\.)*)"'
    r'(?:\s*,\s*"rationale"\s*:\s*"((?:[^"\\]|\\.)*)")?'
)
_BULLET = re.compile(r"^(?:[-*\u2022]|\d+[.)])\s+")
_LABELLED = re.compile(
    r"^\W*(?:formula|law|candidate)\s*\d*\s*(?:\*\*)?\s*[:=]\s*(?:\*\*)?\s*(?P<formula>.+)$", re.IGNORECASE
)
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*(?P<call>\([^)]*\))?\s*=(?!=)\s*(?P<rhs>.+)$")
_PROSE = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}")
_MATH = re.compile(r"[-+*/^(]")
_JSON_START = re.compile(r"[{\[]")


@dataclass(frozen=True)
class RawCandidate:
    """Formula text as found in a reply (not yet parsed), with the model's rationale."""

    formula: str
    rationale: str = ""


def extract_candidates(text: str, n_targets: int = 1) -> list[RawCandidate]:
    """Candidate formula texts in a reply, best-structured source first, without duplicates."""
    text = _THINKING.sub("", text[:MAX_REPLY_CHARS])
    found = _from_json(text) or _from_fences(text, n_targets) or _from_labels(text) or _from_assignments(text)
    unique: dict[str, RawCandidate] = {}
    for candidate in found:
        formula = candidate.formula.strip()
        if formula and formula not in unique:
            unique[formula] = RawCandidate(formula, candidate.rationale.strip())
    return list(unique.values())[:MAX_CANDIDATES]


# -- JSON ------------------------------------------------------------------
def _from_json(text: str) -> list[RawCandidate]:
    decoder = json.JSONDecoder()
    found: list[RawCandidate] = []
    position, tries = 0, 0
    while tries < _MAX_JSON_STARTS:
        match = _JSON_START.search(text, position)
        if match is None:
            break
        tries += 1
        try:
            value, end = decoder.raw_decode(text, match.start())
        except (json.JSONDecodeError, RecursionError):
            position = match.start() + 1  # maybe a complete object starts further in
            continue
        found.extend(_candidates_in(value))
        position = end
    salvaged = [RawCandidate(_unescape(f), _unescape(r or "")) for f, r in _SALVAGE.findall(text)]
    return found + salvaged


def _candidates_in(value: Any) -> list[RawCandidate]:
    if isinstance(value, list):
        return [c for item in value if isinstance(item, dict) for c in _candidates_in(item)]
    if not isinstance(value, dict):
        return []
    for key in _FORMULA_KEYS:
        if key in value:
            formula = _formula_text(value[key])
            rationale = value.get("rationale", "")
            return [RawCandidate(formula, rationale if isinstance(rationale, str) else "")] if formula else []
    for key in _LIST_KEYS:
        items = value.get(key)
        if isinstance(items, list):
            return [c for item in items for c in (
                [RawCandidate(item)] if isinstance(item, str) else _candidates_in(item))]
    return []


def _formula_text(value: Any) -> str:
    """A formula given as a string, or as a list of strings (one per target)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return ""


def _unescape(text: str) -> str:
    try:
        return json.loads(f'"{text}"')
    except json.JSONDecodeError:
        return text


# -- prose -----------------------------------------------------------------
def _from_fences(text: str, n_targets: int) -> list[RawCandidate]:
    found = []
    for _language, body in _FENCE.findall(text):
        lines = [_clean(line) for line in body.splitlines()]
        lines = [line for line in lines if line]
        if not lines or lines[0][0] in "{[":
            continue
        if n_targets == 1 and len(lines) > 1 and not any(_ASSIGNMENT.match(line) for line in lines):
            found.extend(RawCandidate(_drop_call_lhs(line)) for line in lines)  # alternatives
        else:
            found.append(RawCandidate("\n".join(_drop_call_lhs(line) for line in lines)))
    return found


def _from_labels(text: str) -> list[RawCandidate]:
    found = []
    for line in text.splitlines():
        match = _LABELLED.match(line.strip())
        if match:
            found.append(RawCandidate(_drop_call_lhs(_clean(match.group("formula")))))
    return found


def _from_assignments(text: str) -> list[RawCandidate]:
    """Runs of consecutive ``name = expression`` lines; a repeated name starts a new law."""
    blocks: list[list[str]] = []
    names: set[str] = set()
    current: list[str] = []
    for raw in [*text.splitlines(), ""]:
        line = _clean(raw)
        match = _ASSIGNMENT.match(line)
        if match and _looks_like_math(match.group("rhs")) and match.group("name") not in names:
            current.append(line)
            names.add(match.group("name"))
            continue
        if current:
            blocks.append(current)
        current, names = [], set()
        if match and _looks_like_math(match.group("rhs")):
            current, names = [line], {match.group("name")}
    return [RawCandidate("\n".join(_drop_call_lhs(line) for line in block)) for block in blocks]


def _looks_like_math(text: str) -> bool:
    return bool(_MATH.search(text)) and not _PROSE.search(text)


def _clean(line: str) -> str:
    """A line without bullets, backticks or a trailing full stop."""
    line = _BULLET.sub("", line.strip()).strip().rstrip(" .,;")
    return line.strip("`").strip().rstrip(" .,;")


def _drop_call_lhs(line: str) -> str:
    """``L(N, D) = expr`` becomes ``expr``: the formula syntax has no function definitions."""
    match = _ASSIGNMENT.match(line)
    return match.group("rhs").strip() if match and match.group("call") else line
