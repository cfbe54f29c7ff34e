"""``sld report``'s document: one self-contained HTML file about a fitted law or a campaign.

Sections: the law (typeset with matplotlib's mathtext from ``sympy.latex``,
the formula text beside it), its parameters with bootstrap intervals, its
metrics beside the best human law's (``discovery.search.scoring.best_human_law``),
per group the runs against each scale feature with the fitted curve carried
beyond the runs and its interval band (small multiples, at most
``MAX_GROUPS`` groups), residuals against each scale feature, and predicted
against observed.  A campaign's report adds its summary and the campaign
sections (``campaign_page``: the search, the front, the finalists, the
lineage, the LLM calls).  Images are base64 PNG (``plots``), styles are
inline, and nothing refers to a URL, so the file can be mailed or archived as
it is.  Jinja2 renders ``templates/report.html`` (which includes
``templates/campaign.html``) with autoescaping on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sld.discovery.report import plots
from sld.tasks import Rows, Task

MAX_GROUPS = 12
MAX_SLICES = 4  # curves per panel when the other features take few values
CURVE_POINTS = 80
EXTEND = 4.0  # curves run to EXTEND × the largest run (log axes) or 25% of the range further (linear)


@dataclass
class Panel:
    title: str
    image: str
    caption: str = ""


@dataclass
class GroupSection:
    name: str
    panels: list[Panel] = field(default_factory=list)


TEMPLATES = Path(__file__).with_name("templates")  # report.html, and campaign.html for a campaign's report
FITTED_SECTIONS = (("law", "law"), ("parameters", "parameters"), ("metrics", "metrics"),
                   ("groups", "runs per group"), ("residuals", "residuals"), ("observed", "predicted vs observed"))
CAMPAIGN_SECTIONS = (("search", "search"), ("front", "score vs complexity"), ("finalists", "finalists"),
                     ("lineage", "lineage"), ("llm", "LLM calls"))



def _cell(value: float, interval: tuple[float, float] | None = None) -> str:
    from sld.discovery.cli.output import number

    text = number(value, 4)
    if interval is not None:
        text += f" [{number(interval[0], 3)}, {number(interval[1], 3)}]"
    return text


def _scale_indices(task: Task) -> list[int]:
    columns = task.spec.feature_columns
    scale = [columns.index(c) for c in task.spec.scale]
    return scale or [0]


def _curves(boot, group: str, rows: Rows, j: int, symbols: tuple[str, ...], level: float) -> tuple[list[dict], str]:
    """Curves of the fitted law along feature ``j`` for one group: slices, or the others held at one run."""
    X = rows.X
    others = [k for k in range(X.shape[1]) if k != j]
    combos = np.unique(X[:, others], axis=0) if others else np.zeros((1, 0))
    caption = ""
    if len(combos) > MAX_SLICES:
        # many combinations (runs spread over N and D): slices through the runs at the 10th, 50th
        # and 90th percentile of the first other feature, each with that run's other values
        key = X[:, others[0]]
        picks = [int(np.argmin(np.abs(key - np.percentile(key, q)))) for q in (10, 50, 90)]
        combos = np.unique(X[picks][:, others], axis=0)
        caption = (f"curves: slices at the 10th, 50th and 90th percentile of {symbols[others[0]]} among the runs; "
                   "the runs themselves lie between and around them")
    low, high = float(X[:, j].min()), float(X[:, j].max())
    if plots.spans_decades(X[:, j]):
        grid = np.logspace(np.log10(low), np.log10(high * EXTEND), CURVE_POINTS)
    else:
        grid = np.linspace(low, high + 0.25 * (high - low or 1.0), CURVE_POINTS)
    points = []
    for combo in combos:
        block = np.empty((CURVE_POINTS, X.shape[1]))
        block[:, j] = grid
        block[:, others] = combo
        points.append(block)
    stacked = np.concatenate(points)
    curve_rows = Rows(stacked, np.zeros((len(stacked), 1)), np.array([group] * len(stacked), dtype=object))
    predicted = boot.predict(curve_rows)[:, 0]
    lower, upper = boot.predict_interval(curve_rows, level)
    curves = []
    for k, combo in enumerate(combos):
        part = slice(k * CURVE_POINTS, (k + 1) * CURVE_POINTS)
        label = ", ".join(f"{symbols[o]} = {v:.3g}" for o, v in zip(others, combo)) or "fitted law"
        curves.append({"x": grid, "y": predicted[part], "lower": lower[part, 0], "upper": upper[part, 0],
                       "label": label})
    return curves, caption


def build_report(task: Task, law, options, boot, evaluation, human, level: float, resamples: int,
                 campaign: dict | None = None, campaign_notes: tuple[str, ...] = ()) -> str:
    """The HTML text of the report (see the module docstring).

    ``campaign``: the campaign sections' variables (``campaign_page.campaign_sections``),
    for the report of a campaign's chosen law; ``campaign_notes``: warnings shown under its summary.
    """
    import jinja2
    import sympy

    symbols = task.spec.symbols
    target = task.spec.target_columns[0]
    test_label = "test (held out)" if task.spec.kind == "curated" else "test"
    intervals = boot.param_intervals(level)
    groups = [g for g in task.train.group_names if g in boot.params_]
    param_rows = [{"group": g, "cells": [_cell(boot.params_[g][p], intervals[g][p]) for p in law.param_names]}
                  for g in groups[:MAX_GROUPS]]
    failure_lines = [f"{g}: {n} of {resamples} resamples could not be fitted (intervals from the rest): "
                     f"{boot.failure_reasons_.get(g, '')}" for g, n in boot.n_failed_.items() if n]
    failure_lines += [f"{g}: not fitted: {f.reason}" for g, f in boot.fitter_.group_fits_.items() if f.failed]
    metric_rows = [{"name": "this law", "cells": [_cell(evaluation.fit.r2), _cell(evaluation.held_out.r2),
                                                  _cell(evaluation.held_out.nmse), _cell(evaluation.held_out.nmae)]}]
    if human is not None:
        e = human.evaluation
        metric_rows.append({"name": f"best human law: {human.human.name} ({human.formula})",
                            "cells": [_cell(e.fit.r2), _cell(e.held_out.r2), _cell(e.held_out.nmse),
                                      _cell(e.held_out.nmae)]})
    train, test = task.train.by_group(), task.test.by_group()
    scale = _scale_indices(task)
    sections = []
    compact = len(groups) > 4  # small multiples: smaller panels, more per row
    for g in groups[:MAX_GROUPS]:
        section = GroupSection(g)
        tr = train[g]
        te = test.get(g, Rows(np.zeros((0, len(symbols))), np.zeros((0, 1)), np.zeros(0, dtype=object)))
        both = np.concatenate([tr.X, te.X])
        for j in scale:
            curves, caption = _curves(boot, g, Rows(both, np.zeros((len(both), 1)),
                                                    np.array([g] * len(both), dtype=object)), j, symbols, level)
            image = plots.curve_panel(
                symbols[j], target, tr.X[:, j], tr.y[:, 0], te.X[:, j], te.y[:, 0], curves,
                log_x=plots.spans_decades(both[:, j]),
                log_y=plots.spans_decades(np.concatenate([tr.y[:, 0], te.y[:, 0]])),
                title=f"{target} against {symbols[j]}", test_label=test_label, compact=compact)
            section.panels.append(Panel(f"{g}: {target} against {symbols[j]}", image, caption))
        sections.append(section)
    shown = set(groups[:MAX_GROUPS])
    pooled_train = task.train.select(np.isin(task.train.groups, list(shown)))
    pooled_test = task.test.select(np.isin(task.test.groups, list(shown)))
    p_train, p_test = boot.predict(pooled_train)[:, 0], boot.predict(pooled_test)[:, 0]
    residual_panels = [Panel(f"residuals against {symbols[j]}", plots.residual_panel(
        symbols[j], pooled_train.X[:, j], pooled_train.y[:, 0] - p_train, pooled_test.X[:, j],
        pooled_test.y[:, 0] - p_test, plots.spans_decades(np.concatenate([pooled_train.X[:, j],
                                                                                  pooled_test.X[:, j]])),
        test_label)) for j in scale]
    observed_panels = [Panel("predicted against observed", plots.observed_panel(
        target, p_train, pooled_train.y[:, 0], p_test, pooled_test.y[:, 0], test_label))]
    latex = "; ".join(sympy.latex(o) for o in law.outputs)
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined)
    contents = FITTED_SECTIONS + (CAMPAIGN_SECTIONS if campaign else ())
    return environment.get_template("report.html").render(
        campaign=campaign, campaign_notes=list(campaign_notes), contents=contents,
        task=task.name, formula_text=law.text, formula_image=plots.formula_image(latex),
        reductions=list(law.reductions), n_params=law.n_params, options=options,
        level_pct=f"{level:.0%}", resamples=resamples, n_train=len(task.train), n_test=len(task.test),
        param_names=list(law.param_names), param_rows=param_rows, hidden_groups=max(0, len(groups) - MAX_GROUPS),
        failure_lines=failure_lines, metric_rows=metric_rows, has_human=human is not None,
        groups=sections, hidden_panel_groups=max(0, len(groups) - MAX_GROUPS), max_groups=MAX_GROUPS,
        shown_all=len(groups) <= MAX_GROUPS, residual_panels=residual_panels, observed_panels=observed_panels,
        compact=compact, target=target, n_targets=len(task.spec.targets), test_label=test_label)
