"""The values the archive stores and returns.

``NewEntry`` is what the campaign loop hands over after evaluating one
candidate; ``Entry`` is the same law read back, with its id, campaign,
timestamp and the token counts of the LLM call that produced it.  Every record
is a frozen dataclass; dict fields hold plain JSON-compatible data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sld.archive.jsoncodec import json_safe

ENTRY_STATUSES = ("ok", "rejected", "failed")
CAMPAIGN_STATUSES = ("running", "finished", "interrupted", "failed")


@dataclass(frozen=True)
class NewEntry:
    """One evaluated candidate, ready to store.

    ``status`` is ``"ok"`` (parsed and fitted), ``"failed"`` (parsed, but the
    fit or scoring failed) or ``"rejected"`` (the text did not parse, so
    ``key``, ``srepr``, ``complexity`` and ``n_params`` are None).  ``params``
    maps group → parameter → fitted value; ``train``/``validation`` map metric
    name → value; ``score`` is the selection score on validation rows (lower
    is better).
    """

    formula: str
    key: str | None
    srepr: str | None
    complexity: int | None
    n_params: int | None
    proposer: str
    operator: str
    generation: int
    island: int
    parent_ids: tuple[int, ...]
    rationale: str
    status: str
    reason: str
    params: dict[str, dict[str, float]]
    train: dict[str, float]
    validation: dict[str, float]
    score: float | None
    diagnostics: dict
    seconds: float
    llm_call_id: int | None = None

    def __post_init__(self) -> None:
        if self.status not in ENTRY_STATUSES:
            raise ValueError(f"status must be one of {ENTRY_STATUSES}, got {self.status!r}")
        if self.status == "ok" and self.key is None:
            raise ValueError("an 'ok' entry was parsed, so it needs its canonical key")
        # Lineage arrives as lists from JSON or as tuples; store one shape.
        object.__setattr__(self, "parent_ids", tuple(int(p) for p in self.parent_ids))


@dataclass(frozen=True, kw_only=True)
class Entry(NewEntry):
    """A stored law with its evaluation, lineage and (when linked) LLM token counts."""

    id: int
    campaign_id: int
    created_at: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class CampaignRecord:
    """One discovery run on one task; ``settings`` is the run's configuration as a dict."""

    id: int
    task: str
    settings: dict
    seed: int
    status: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class LLMCall:
    """One request to a language model; ``response_format`` names the structured-output mode used."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float
    ok: bool
    error: str = ""
    response_format: str = ""


@dataclass(frozen=True)
class LLMUsage:
    """Totals over a campaign's LLM calls."""

    calls: int
    failed_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float


def record_to_dict(record: Any) -> dict[str, Any]:
    """Any record above as strict-JSON-compatible data (non-finite floats as strings, see jsoncodec)."""
    return json_safe(asdict(record))
