"""The figures of ``sld report``, each one panel, as base64 PNG (matplotlib, Agg backend).

Every function returns a ``data:image/png;base64,...`` URI, so the report is
one self-contained HTML file.  Features that span two or more decades (all
positive) get log axes.  Colours: training runs blue, test runs orange
(labelled "test"), the fitted law black with its bootstrap band grey (one viridis colour
per slice where a panel shows several curves).
"""

from __future__ import annotations

import base64
import io

import numpy as np

TRAIN, TEST, LAW, BAND = "#1f77b4", "#ff7f0e", "#222222", "#999999"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _uri(figure) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def spans_decades(values: np.ndarray) -> bool:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return bool(values.size and np.all(values > 0) and values.max() / values.min() >= 100)


def formula_image(latex: str) -> str | None:
    """The law typeset by matplotlib's mathtext, or None if mathtext cannot render it."""
    plt = _pyplot()
    figure = plt.figure(figsize=(0.01, 0.01))
    try:
        figure.text(0, 0, f"${latex}$", fontsize=18)
        return _uri(figure)
    except Exception:  # mathtext supports a subset of LaTeX: the report then shows the formula as text
        plt.close(figure)
        return None


def curve_panel(feature: str, target: str, train_x, train_y, test_x, test_y, curves: list[dict],
                log_x: bool, log_y: bool, title: str, test_label: str, compact: bool = False) -> str:
    """Runs against one feature with the fitted law's curve(s), carried past the runs, and bands.

    ``curves``: dicts with ``x``, ``y``, ``lower``, ``upper`` and ``label``.
    ``compact``: a smaller panel, for the small multiples of a many-group task.
    """
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(3.1, 2.4) if compact else (4.2, 3.2))
    # one colour per slice (dark to light along the slicing feature), so the legend says which is which
    colours = [LAW] if len(curves) == 1 else [plt.get_cmap("viridis")(0.85 * k / (len(curves) - 1))
                                             for k in range(len(curves))]
    for curve, colour in zip(curves, colours):
        ax.fill_between(curve["x"], curve["lower"], curve["upper"], color=colour if len(curves) > 1 else BAND,
                        alpha=0.25, linewidth=0)
        ax.plot(curve["x"], curve["y"], color=colour, linewidth=1.3, label=curve["label"])
    ax.scatter(train_x, train_y, s=14, color=TRAIN, label="train", zorder=3)
    if len(test_x):
        ax.scatter(test_x, test_y, s=22, color=TEST, marker="D", label=test_label, zorder=4)
    if log_x:  # scales before limits: a limit set on a linear axis can be negative, which log refuses
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    if curves:
        xs = np.concatenate([np.asarray(train_x, float), np.asarray(test_x, float)])
        ax.axvline(float(np.max(xs)), color="#bbbbbb", linewidth=0.8, linestyle=":")
        ax.set_xlim(float(min(np.min(xs), min(np.min(c["x"]) for c in curves))),
                    float(max(np.max(c["x"]) for c in curves)) * (1.05 if log_x else 1.0))
        observed = np.concatenate([np.asarray(train_y, float), np.asarray(test_y, float)])
        observed = observed[np.isfinite(observed)]
        if observed.size:  # keep the runs in view: a band that blows up beyond them must not squash them
            span = float(observed.max() - observed.min()) or abs(float(observed.max())) or 1.0
            low, high = float(observed.min()) - 0.15 * span, float(observed.max()) + 0.15 * span
            if log_y:
                low = max(low, float(observed.min()) / 1.5)
            ax.set_ylim(low, high)
    ax.set_xlabel(feature)
    ax.set_ylabel(target)
    ax.set_title(title, fontsize=9)
    if len(curves) > 1:  # the slices' labels are long: below the axes, where they cover no curve or run
        ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    else:
        ax.legend(fontsize=7, frameon=False, loc="best")
    return _uri(figure)


def residual_panel(feature: str, x_train, r_train, x_test, r_test, log_x: bool, test_label: str) -> str:
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(4.2, 3.0))
    ax.axhline(0.0, color=LAW, linewidth=0.8)
    ax.scatter(x_train, r_train, s=12, color=TRAIN, label="train")
    if len(x_test):
        ax.scatter(x_test, r_test, s=20, color=TEST, marker="D", label=test_label)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(feature)
    ax.set_ylabel("observed − predicted")
    ax.set_title(f"residuals against {feature}", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="best")
    return _uri(figure)


def observed_panel(target: str, p_train, y_train, p_test, y_test, test_label: str) -> str:
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(4.2, 3.6))
    finite = np.concatenate([v[np.isfinite(v)] for v in (p_train, y_train, p_test, y_test) if len(v)])
    low, high = float(finite.min()), float(finite.max())
    ax.plot([low, high], [low, high], color=LAW, linewidth=0.8, label="predicted = observed")
    ax.scatter(y_train, p_train, s=12, color=TRAIN, label="train")
    if len(y_test):
        ax.scatter(y_test, p_test, s=20, color=TEST, marker="D", label=test_label)
    ax.set_xlabel(f"observed {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title("predicted against observed", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="best")
    return _uri(figure)


# -- the campaign's panels ----------------------------------------------------------------
CHOSEN, FRONT, OTHERS = "#d62728", "#1f77b4", "#c7c7c7"


def _score_axis(ax, values) -> None:
    """Log scale for validation scores when they are all positive (they are NMSEs, often spanning decades)."""
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if values.size and np.all(values > 0):
        ax.set_yscale("log")


def search_panel(counts, scores, best, chosen: tuple[int, float] | None) -> str:
    """Best validation score so far against laws evaluated, each law's own score faint behind it.

    ``chosen``: (the chosen law's position in evaluation order, its search score).
    """
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5.6, 3.4))
    own = [(n, s) for n, s in zip(counts, scores) if s is not None]
    if own:
        ax.scatter(*zip(*own), s=9, color=OTHERS, label="each law's score", zorder=2)
    running = [(n, b) for n, b in zip(counts, best) if b is not None]
    if running:
        xs, ys = zip(*running)
        ax.step(list(xs) + [counts[-1]], list(ys) + [ys[-1]], where="post", color=LAW, linewidth=1.4,
                label="best so far", zorder=3)
    if chosen is not None:
        ax.scatter([chosen[0]], [chosen[1]], s=90, marker="*", color=CHOSEN, label="chosen law", zorder=4)
    _score_axis(ax, scores)
    if running:  # keep the best-so-far curve readable: hopeless laws may lie decades above it
        low, high = min(ys), max(ys)
        top = max(s for _, s in own)
        if ax.get_yscale() == "log":
            ax.set_ylim(low / 2.0, min(top * 1.5, high * 1e3))
    ax.set_xlabel("laws evaluated")
    ax.set_ylabel("validation score (lower is better)")
    ax.set_title("best validation score against laws evaluated", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.9, edgecolor="none")
    return _uri(figure)


def front_panel(points, front, chosen: tuple[int, float] | None) -> str:
    """Validation score against complexity: every law faint, the Pareto front joined, the chosen law starred.

    ``points`` and ``front``: (complexity, score) pairs.
    """
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5.6, 3.4))
    if points:
        ax.scatter(*zip(*points), s=9, color=OTHERS, label="evaluated laws", zorder=2)
    if front:
        xs, ys = zip(*sorted(front))
        ax.step(xs, ys, where="post", color=FRONT, linewidth=1.0, zorder=3)
        ax.scatter(xs, ys, s=24, color=FRONT, label="Pareto front", zorder=4)
    if chosen is not None:
        ax.scatter([chosen[0]], [chosen[1]], s=110, marker="*", color=CHOSEN, label="chosen law", zorder=5)
    _score_axis(ax, [s for _, s in points])
    if front and ax.get_yscale() == "log":  # the front is what matters: hopeless laws may lie decades above
        low = min(s for _, s in front)
        top = max(s for _, s in points)
        ax.set_ylim(low / 2.0, min(top * 1.5, max(s for _, s in front) * 1e3))
    ax.set_xlabel("complexity (expression nodes)")
    ax.set_ylabel("validation score (lower is better)")
    ax.set_title("validation score against complexity", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.9, edgecolor="none")
    return _uri(figure)
