"""``sld report``'s document: one self-contained HTML file about one fitted law.

Sections: the law (typeset with matplotlib's mathtext from ``sympy.latex``,
the formula text beside it), its parameters with bootstrap intervals, its
metrics beside the best human law's (``discovery.report.best_human_law``),
per group the runs against each scale feature with the fitted curve carried
beyond the runs and its interval band (small multiples, at most
``MAX_GROUPS`` groups), residuals against each scale feature, and predicted
against observed.  Images are base64 PNG (``discovery.report_plots``), styles
are inline, and nothing refers to a URL, so the file can be mailed or archived
as it is.  Jinja2 renders it with autoescaping on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sld report: {{ task }}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1320px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; } h3 { font-size: 1em; margin: 1em 0 0.3em; }
.meta { color: #666; font-size: 0.9em; }
code, pre { font-family: Menlo, Consolas, monospace; font-size: 0.9em; background: #f5f5f5; padding: 0.1em 0.3em; }
pre { padding: 0.6em; white-space: pre-wrap; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; } th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; }
figure img { max-width: 440px; display: block; } .compact figure img { max-width: 310px; }
.compact .group h3 { font-size: 0.8em; } figcaption { font-size: 0.78em; color: #555; max-width: 440px; }
.group { border: 1px solid #eee; padding: 0.5em; border-radius: 4px; }
.note { color: #8a5a00; font-size: 0.9em; }
</style></head><body>
<h1>{{ formula_text }}</h1>
<p class="meta">task <b>{{ task }}</b> · {{ n_params }} parameter(s) fitted per group ({{ options.space }} space,
{{ options.loss }} loss{% if options.outlier_fence %}, outlier fence {{ options.outlier_fence }} IQR{% endif %},
seed {{ options.seed }}) · {{ level_pct }} intervals from {{ resamples }} bootstrap resamples of the training runs
within each group · {{ n_train }} training and {{ n_test }} test runs</p>

<section id="law"><h2>The law</h2>
{% if formula_image %}<img alt="{{ formula_text }}" src="{{ formula_image }}">{% endif %}
<pre>{{ formula_text }}</pre>
{% for note in reductions %}<p class="note">reduced: {{ note }}</p>{% endfor %}
</section>

<section id="parameters"><h2>Parameters</h2>
<p class="meta">value, and in brackets the {{ level_pct }} bootstrap interval (percentiles of the refitted values)</p>
<table><tr><th>group</th>{% for p in param_names %}<th>{{ p }}</th>{% endfor %}</tr>
{% for row in param_rows %}<tr><td>{{ row.group }}</td>{% for cell in row.cells %}<td class="num">{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% if hidden_groups %}<p class="meta">… and {{ hidden_groups }} more group(s); <code>sld eval --ci --json</code> lists all.</p>{% endif %}
{% for line in failure_lines %}<p class="note">{{ line }}</p>{% endfor %}
</section>

<section id="metrics"><h2>Metrics (SLDBench)</h2>
<table><tr><th>law</th><th>train R²</th><th>test R²</th><th>test NMSE</th><th>test NMAE</th></tr>
{% for row in metric_rows %}<tr><td>{{ row.name }}</td>{% for cell in row.cells %}<td class="num">{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% if not has_human %}<p class="meta">The task has no human law that never saw its test rows, so there is no bar.</p>{% endif %}
</section>

<section id="groups"><h2>Runs and fitted law, per group</h2>
<p class="meta">Blue: training runs; orange diamonds: {{ test_label }} runs; lines: the fitted law (one per slice
through the other features, as the legend says), carried beyond the runs (dotted line: the largest run), with its
{{ level_pct }} bootstrap band shaded. Target: {{ target }}{% if n_targets > 1 %}
(the first of {{ n_targets }} targets){% endif %}.</p>
<div class="grid{% if compact %} compact{% endif %}">
{% for group in groups %}<div class="group"><h3>{{ group.name }}</h3><div class="grid">
{% for panel in group.panels %}<figure><img alt="{{ panel.title }}" src="{{ panel.image }}">{% if panel.caption %}<figcaption>{{ panel.caption }}</figcaption>{% endif %}</figure>
{% endfor %}</div></div>
{% endfor %}</div>
{% if hidden_panel_groups %}<p class="meta">{{ hidden_panel_groups }} more group(s) not shown (at most {{ max_groups }}).</p>{% endif %}
</section>

<section id="residuals"><h2>Residuals against scale</h2>
<p class="meta">All {% if shown_all %}groups{% else %}shown groups{% endif %} pooled.</p>
<div class="grid">{% for panel in residual_panels %}<figure><img alt="{{ panel.title }}" src="{{ panel.image }}"></figure>{% endfor %}</div>
</section>

<section id="observed"><h2>Predicted against observed</h2>
<div class="grid">{% for panel in observed_panels %}<figure><img alt="{{ panel.title }}" src="{{ panel.image }}"></figure>{% endfor %}</div>
</section>
<p class="meta">Written by <code>sld report</code>.</p>
</body></html>
"""


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


def build_report(task: Task, law, options, boot, evaluation, human, level: float, resamples: int) -> str:
    """The HTML text of the report (see the module docstring)."""
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
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(TEMPLATE).render(
        task=task.name, formula_text=law.text, formula_image=plots.formula_image(latex),
        reductions=list(law.reductions), n_params=law.n_params, options=options,
        level_pct=f"{level:.0%}", resamples=resamples, n_train=len(task.train), n_test=len(task.test),
        param_names=list(law.param_names), param_rows=param_rows, hidden_groups=max(0, len(groups) - MAX_GROUPS),
        failure_lines=failure_lines, metric_rows=metric_rows, has_human=human is not None,
        groups=sections, hidden_panel_groups=max(0, len(groups) - MAX_GROUPS), max_groups=MAX_GROUPS,
        shown_all=len(groups) <= MAX_GROUPS, residual_panels=residual_panels, observed_panels=observed_panels,
        compact=compact, target=target, n_targets=len(task.spec.targets), test_label=test_label)
