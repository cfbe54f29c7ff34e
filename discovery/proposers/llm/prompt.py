"""Chat messages asking a model for candidate laws, filled from a ``ProposalContext``.

The wording lives in template files (``discovery/proposers/llm/prompts/*.txt``) filled with
``string.Template``, so it can be read and edited as text.  Everything shown
comes from the training task and the archive's validation scores: the
context's ``task`` is a ``TrainingTask``, which holds no test rows.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sld.discovery.proposers.llm import data_view
from sld.discovery.proposers.llm.errors import one_line
from sld.discovery.proposers.base import Failure, ProposalContext, Scored
from sld.evaluators.formula import FUNCTION_NAMES, FormulaLimits
from sld.tasks import TaskSpec


@dataclass(frozen=True)
class PromptOptions:
    """How much of the data and the archive a prompt shows (prompts stay a few KB)."""

    max_groups: int = 4
    rows_per_group: int = 5
    max_parents: int = 4
    max_elites: int = 5
    max_diverse: int = 3
    max_failures: int = 8
    max_params_shown: int = 12


@cache
def load_template(name: str) -> string.Template:
    """A prompt template shipped in ``discovery/proposers/llm/prompts``."""
    text = (resources.files("sld.discovery.proposers.llm") / "prompts" / name).read_text(encoding="utf-8")
    return string.Template(text)


def build_messages(context: ProposalContext, n: int, options: PromptOptions | None = None) -> list[dict[str, str]]:
    """System and user messages asking for ``n`` candidate laws."""
    options = options or PromptOptions()
    task, spec = context.task, context.task.spec
    system = load_template("system.txt").substitute(functions=", ".join(FUNCTION_NAMES))
    shown: set[int] = set()
    user = load_template("propose.txt").substitute(
        task_name=spec.name,
        description=" ".join(spec.description.split()),
        features=data_view.feature_lines(task),
        targets=data_view.target_lines(task),
        groups=data_view.group_summary(task.train, options.max_groups),
        trends=data_view.trend_lines(task),
        samples=data_view.sample_table(task, options.max_groups, options.rows_per_group),
        sample_order=data_view.sample_order(spec),
        param_budget=parameter_budget(spec),
        example=syntax_example(spec),
        parents=_laws(context.parents, options.max_parents, shown, options),
        elites=_laws(context.elites, options.max_elites, shown, options),
        diverse=_laws(context.diverse, options.max_diverse, shown, options),
        failures=_failures(context.failures, options.max_failures),
        how_many="1 new law" if n == 1 else f"{n} new laws",
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parameter_budget(spec: TaskSpec) -> int:
    """The limit ``parse_law`` enforces: the task's budget, else the parser's default."""
    return spec.param_budget if spec.param_budget is not None else FormulaLimits().max_params


def syntax_example(spec: TaskSpec) -> str:
    """A neutral example over the task's own symbols, one line per target."""
    first = spec.symbols[0]
    second = spec.symbols[1] if len(spec.symbols) > 1 else spec.symbols[0]
    lines = [f"c{i} + k{i} * {first}^(-a{i}) * log({second})" for i in range(1, len(spec.targets) + 1)]
    return " ; ".join(lines)


def _laws(laws: tuple[Scored, ...], limit: int, shown: set[int], options: PromptOptions) -> str:
    """Numbered laws with scores and fitted parameters, each shown once (tournaments repeat parents)."""
    fresh: list[Scored] = []
    for law in laws:
        if len(fresh) < limit and law.law_id not in shown:
            shown.add(law.law_id)
            fresh.append(law)
    if not fresh:
        return "(none yet)"
    return "\n".join(_law_entry(scored, options) for scored in fresh)


def _law_entry(scored: Scored, options: PromptOptions) -> str:
    law = scored.law
    lines = [f"- law {scored.law_id}: validation NMSE {_score(scored.validation_nmse)}, "
             f"{law.n_params} parameters, complexity {law.complexity}"]
    lines += [f"    {line}" for line in law.text.splitlines()]
    fitted = _fitted_parameters(scored.params, options.max_params_shown)
    if fitted:
        lines.append(f"    fitted: {fitted}")
    if scored.rationale:
        lines.append(f"    idea: {one_line(scored.rationale, 160)}")
    return "\n".join(lines)


def _score(value: float) -> str:
    return data_view.number(value) if math.isfinite(value) else "not finite (failed)"


def _fitted_parameters(params: dict[str, dict[str, float]], limit: int) -> str:
    """Each parameter's value, or its range over groups when groups differ."""
    by_name: dict[str, list[float]] = {}
    for values in params.values():
        for name, value in values.items():
            by_name.setdefault(name, []).append(float(value))
    parts = []
    for name in sorted(by_name)[:limit]:
        values = by_name[name]
        low, high = min(values), max(values)
        if data_view.number(low) == data_view.number(high):
            parts.append(f"{name}={data_view.number(low)}")
        else:
            parts.append(f"{name}={data_view.number(low)}..{data_view.number(high)}")
    if len(by_name) > limit:
        parts.append(f"... ({len(by_name) - limit} more)")
    groups = f" over {len(params)} groups" if len(params) > 1 else ""
    return ", ".join(parts) + (groups if parts else "")


def _failures(failures: tuple[Failure, ...], limit: int) -> str:
    recent = failures[-limit:]
    if not recent:
        return "(none)"
    lines = []
    for failure in recent:
        formula = one_line(" ; ".join(failure.formula.splitlines()), 160) or "(no formula)"
        lines.append(f"- {formula}\n    rejected: {one_line(failure.reason, 200)}")
    return "\n".join(lines)
