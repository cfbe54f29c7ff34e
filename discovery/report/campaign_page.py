"""The campaign sections of the report: a ``CampaignStory`` as tables and figures.

``campaign_sections`` returns what ``templates/campaign.html`` renders: the
campaign's summary line, the search curve (best validation score against laws
evaluated), the front of validation score against complexity with the chosen
law marked (and the front's laws as a table), the finalists with their search
and full-effort scores per fold and why the chosen one won, the chosen law's
lineage as an indented table, and the LLM calls ("none (offline proposer)"
when there were none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sld.discovery.report import plots
from sld.discovery.report.campaign import CampaignStory, search_curve

MAX_FRONT_ROWS = 15


@dataclass(frozen=True)
class FinalistRow:
    law_id: int
    formula: str
    complexity: str
    search_score: str
    rescored: str
    folds: str
    spread: str  # the bootstrap spread beyond the runs ('stable' final choice), or "—"
    consensus: str  # distance of its forecast beyond the runs from the others' median ('consensus'), or "—"
    chosen: bool
    why: str


@dataclass(frozen=True)
class LawRow:
    """A law in the front or lineage table; ``indent`` in em for the lineage's depth."""

    law_id: int
    formula: str
    complexity: str
    score: str
    origin: str
    indent: float = 0.0
    chosen: bool = False
    note: str = ""


def campaign_sections(story: CampaignStory) -> dict:
    """Template variables of the campaign sections (``campaign`` in ``templates/report.html``)."""
    result, record = story.result, story.record
    chosen = story.chosen
    position = next((n for n, e in enumerate(story.entries, start=1) if e.id == story.chosen_id), None)
    counts, scores, best = search_curve(story.entries)
    marked = (position, chosen.score) if chosen is not None and position and _finite(chosen.score) else None
    points = [(e.complexity, e.score) for e in story.entries
              if e.status == "ok" and e.complexity is not None and _finite(e.score)]
    front = [(e.complexity, e.score) for e in story.front]
    marked_front = (chosen.complexity, chosen.score) if marked and chosen.complexity is not None else None
    return {
        "id": record.id, "status": record.status, "seed": record.seed, "created_at": record.created_at,
        "budget": record.settings.get("budget"), "evaluated": result.get("evaluated"),
        "rejected": result.get("rejected", 0), "timed_out": result.get("timed_out", 0),
        "stop": result.get("stop", ""), "seconds": result.get("seconds"), "proposer": result.get("proposer", ""),
        "members": list(result.get("members") or []),
        "chosen_id": story.chosen_id, "validation": _validation_line(result.get("validation") or {}),
        "search_image": plots.search_panel(counts, scores, best, marked) if counts else None,
        "front_image": plots.front_panel(points, front, marked_front) if points else None,
        "front_rows": [_law_row(e, story.chosen_id) for e in story.front[:MAX_FRONT_ROWS]],
        "hidden_front": max(0, len(story.front) - MAX_FRONT_ROWS),
        "chosen_on_front": any(e.id == story.chosen_id for e in story.front),
        "choice_rule": _choice_rule(record.settings, len(result.get("finalists") or [])),
        "finalists": [_finalist_row(f) for f in result.get("finalists") or []],
        "chosen_why": next((f.get("why", "") for f in result.get("finalists") or [] if f.get("chosen")), ""),
        "lineage": [_law_row(r.entry, story.chosen_id, indent=1.4 * r.depth, repeated=r.repeated)
                    for r in story.lineage],
        "hidden_ancestors": story.hidden_ancestors,
        "llm": _llm(story),
    }


def _law_row(entry, chosen_id: int, indent: float = 0.0, repeated: bool = False) -> LawRow:
    note = "listed above; its ancestors are not repeated" if repeated else entry.rationale
    return LawRow(entry.id, "; ".join(entry.formula.splitlines()), _count(entry.complexity), _score(entry.score),
                  origin(entry), indent, entry.id == chosen_id, _short(note))


def origin(entry) -> str:
    """How a law was made, in words: a library or starting law, a language model's proposal, or an operator."""
    parents = len(entry.parent_ids)
    from_parents = f"{parents} parent{'s' if parents != 1 else ''}"
    if entry.operator == "library":
        return "library law (no parent)"
    if entry.proposer == "seed" or entry.operator in ("seed", "human_law"):
        return "starting law (no parent)"
    if entry.proposer == "llm" or entry.operator == "llm":
        return (f"language model, from {from_parents} (generation {entry.generation})" if parents
                else "language model (no parent)")
    kind = f"{entry.operator} of {from_parents}" if parents else entry.operator
    return f"{kind} ({entry.proposer}, generation {entry.generation})"


def _finalist_row(finalist: dict) -> FinalistRow:
    rescored = finalist.get("rescored") or {}
    folds = ", ".join(_score(f.get("nmse")) for f in rescored.get("folds") or [])
    if rescored and rescored.get("status") not in (None, "ok"):
        folds = f"{rescored.get('status')}: {_short(rescored.get('reason', ''))}"
    return FinalistRow(int(finalist["law_id"]), "; ".join(str(finalist.get("formula", "")).splitlines()),
                       _count(finalist.get("complexity")), _score(finalist.get("search_score")),
                       _score(rescored.get("score")) if rescored else "not re-scored", folds or "—",
                       _score(finalist.get("spread")) if finalist.get("spread") is not None else "—",
                       _score(finalist.get("consensus")) if finalist.get("consensus") is not None else "—",
                       bool(finalist.get("chosen")), finalist.get("why", ""))


def _choice_rule(settings: dict, n_finalists: int) -> str:
    if settings.get("final_choice") == "stable" and n_finalists > 1:
        return (f"The best {n_finalists} laws were refitted on {settings.get('stable_resamples', 10)} resamples "
                f"of the training runs; of those within {settings.get('stable_tolerance', 0.05):.0%} of the best "
                "search score, the one whose predictions beyond the runs spread least was kept "
                "(final_choice = stable).")
    if settings.get("final_choice") == "consensus" and n_finalists > 1:
        return (f"The best {n_finalists} laws were refitted on every training run and read beyond the runs; "
                "the one whose forecast there sits closest to the median of the others' was kept "
                "(final_choice = consensus).")
    if settings.get("final_choice", "search") != "rescored" or n_finalists <= 1:
        return ("The campaign kept the best law by its search score (final_choice = search); the other "
                "finalists are the runners-up, not re-scored.")
    folds = "worst" if settings.get("final_folds", "worst") == "worst" else "mean"
    tolerance, ratio = settings.get("simpler_tolerance", 0.1), settings.get("simpler_ratio", 0.7)
    return (f"The best {n_finalists} laws were refitted with full effort on every validation fold and scored by "
            f"their {folds} fold (final_choice = rescored); a finalist within {tolerance:.0%} of the best score "
            f"and at most {ratio:.0%} of its complexity replaces it.")


def _llm(story: CampaignStory) -> dict:
    usage = story.llm
    models = ", ".join(f"{m} ({n} call{'s' if n != 1 else ''})" for m, n in story.llm_models.items())
    proposer = story.result.get("proposer", "offline")
    if usage.calls == 0:
        none = "none (offline proposer)" if proposer == "offline" else \
            f"none: the {proposer} proposer made no call before the campaign stopped"
        return {"calls": 0, "none": none}
    return {"calls": usage.calls, "failed": usage.failed_calls, "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens, "cost": f"{usage.cost_usd:.4f}",
            "latency": f"{usage.latency_s:.1f}", "models": models, "none": "",
            "laws": sum(1 for e in story.entries if e.llm_call_id is not None)}


def _validation_line(validation: dict) -> str:
    r2, score = validation.get("r2"), validation.get("score")
    parts = [f"validation R² {_score(r2)}" if r2 is not None else "", f"score {_score(score)}" if score else ""]
    return ", ".join(p for p in parts if p)


def _score(value) -> str:
    from sld.discovery.cli.output import number

    return number(float(value), 4) if _finite(value) else "—"


def _count(value) -> str:
    return "—" if value is None else str(value)


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
