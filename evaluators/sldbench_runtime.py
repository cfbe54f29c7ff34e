"""The fitting code every exported SLDBench program carries, copied verbatim.

``sld.evaluators.sldbench`` writes the source of the functions in ``EMBEDDED``
into each program (so a program needs NumPy and SciPy, never sld), and uses
the same functions on our side to compute what a program looks up: the
fingerprint of each group's training runs, the outlier fence's bounds and the
Huber threshold.  One implementation, so the two sides cannot drift apart.

Rules for this module, since its code runs inside SLDBench: only ``numpy``
and ``hashlib`` at module level (SciPy is imported where it is used), no
module state, and no names from the rest of sld.  ``law`` is always the
program's ``scaling_law_func(data_points, params)``.

The fence and the Huber threshold restate, for one group's runs, what
``tasks.rows.typical_mask`` and ``LawFitter`` do on a whole task (the
quartile fence, a threshold relative to the median target on linear
residuals); the export test checks that both give sld's numbers.
"""

from __future__ import annotations

import hashlib

import numpy


def as_rows(data_points, loss_values):
    """The runs as float matrices: X (n, features) and y (n, targets), whatever dtype they came in."""
    X = numpy.asarray(data_points, dtype=float)
    X = X.reshape(len(X), -1)
    y = numpy.asarray(loss_values, dtype=float).reshape(len(X), -1)
    return X, y


def as_columns(outputs, n):
    """The law's outputs as predictions: (n,) for one target, (n, targets) for several."""
    columns = [numpy.broadcast_to(numpy.asarray(value, dtype=float), (n,)) for value in outputs]
    return columns[0].copy() if len(columns) == 1 else numpy.column_stack(columns)


def fingerprint(X, y):
    """A digest of a group's runs that ignores row order, and int against float (12 significant digits)."""
    table = numpy.hstack([X, y]).tolist()
    lines = sorted(",".join(f"{value:.12g}" for value in row) for row in table)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:24]


def fence_bounds(y, fence):
    """Per target, the (low, high) range an outlier fence of ``fence`` IQRs beyond the quartiles keeps.

    None without a fence.  A target whose quartiles coincide fences nothing.
    """
    if fence is None or len(y) == 0:
        return None
    q1, q3 = numpy.percentile(y, [25, 75], axis=0)
    reach = numpy.where(q3 > q1, fence * (q3 - q1), numpy.inf)
    return tuple((q1 - reach).tolist()), tuple((q3 + reach).tolist())


def inside(y, bounds):
    """Which runs to fit: those within ``bounds`` on every target; all of them if none is (or no bounds)."""
    if bounds is None:
        return numpy.ones(len(y), dtype=bool)
    low, high = numpy.asarray(bounds[0]), numpy.asarray(bounds[1])
    keep = numpy.all((y >= low) & (y <= high), axis=1)
    return keep if keep.any() else numpy.ones(len(y), dtype=bool)


def huber_threshold(y, space, delta):
    """The Huber loss's threshold: ``delta`` on log residuals, ``delta`` × median |target| on linear ones."""
    if delta is None:
        return None
    return delta if space == "log" else delta * max(float(numpy.median(numpy.abs(y))), 1e-12)


def residuals(law, X, y, theta, space):
    """Prediction errors in the fitting space (of the log of the target for ``space='log'``), flattened."""
    with numpy.errstate(all="ignore"):
        predictions = numpy.asarray(law(X, theta), dtype=float).reshape(y.shape)
        errors = numpy.log(predictions) - numpy.log(y) if space == "log" else predictions - y
    return errors.ravel()


def cost(law, X, y, theta, space, threshold):
    """The fit's objective, ½ Σ ρ(r): squared error, or Huber beyond ``threshold``; inf if not finite."""
    r = residuals(law, X, y, theta, space)
    with numpy.errstate(all="ignore"):
        if threshold is None:
            rho = r**2
        else:
            z = (r / threshold) ** 2
            rho = threshold**2 * numpy.where(z <= 1, z, 2 * numpy.sqrt(z) - 1)
        value = 0.5 * float(numpy.sum(rho))
    return value if numpy.isfinite(value) else numpy.inf


def polish(law, X, y, theta, space, threshold):
    """(θ, cost) after SciPy's least squares from ``theta``; ``theta`` itself unless that lowers the cost.

    "Lowers" means by more than a part in 1e8: sld's own fit stops when a step
    gains less than a part in 1e10, and a gain that small, found by sliding
    along a flat direction, would move the extrapolation without fitting the
    training runs any better.
    """
    from scipy.optimize import least_squares

    theta = numpy.asarray(theta, dtype=float)
    before = cost(law, X, y, theta, space, threshold)
    if not numpy.isfinite(before):
        return theta, before
    try:
        result = least_squares(
            lambda t: residuals(law, X, y, t, space), theta, method="trf", x_scale="jac",
            loss="linear" if threshold is None else "huber", f_scale=1.0 if threshold is None else threshold,
            max_nfev=100 * (theta.size + 1))
    except (ValueError, numpy.linalg.LinAlgError):  # residuals not finite on the way
        return theta, before
    after = cost(law, X, y, result.x, space, threshold)
    if after < before * (1 - 1e-8):
        return numpy.asarray(result.x, dtype=float), after
    return theta, before


def starts_for(law, X, y, stored, space, threshold, n_random=24, seed=0):
    """Starts for runs sld never fitted, lowest cost first: the stored vectors and random ones around the best."""
    stored = [numpy.asarray(t, dtype=float) for t in stored]
    best = min(stored, key=lambda t: cost(law, X, y, t, space, threshold))
    rng = numpy.random.default_rng(seed)
    scaled = best * numpy.exp(rng.normal(0.0, 1.0, (n_random, best.size)))
    signs = numpy.where(rng.random((n_random, best.size)) < 0.8, 1.0, -1.0)
    starts = stored + list(scaled) + list(scaled * signs)
    return sorted(starts, key=lambda t: cost(law, X, y, t, space, threshold))


def fit_group(data_points, loss_values, law, n_params, fitted, settings):
    """What ``fit_scaling_law`` returns for one group's training runs: a parameter array.

    A group sld fitted is recognised by its runs' fingerprint and gets sld's
    values as they are, so SLDBench scores the very law sld reported, on any
    machine (a polish could move an ill-conditioned fit, and with it the
    extrapolation, by a different amount on each).  Other runs get the best of
    the stored vectors and random starts around it, each polished.
    Either way the fit uses sld's fitting space, loss and outlier fence.  A law
    without parameters returns one dummy 0 (SLDBench refuses an empty array).
    """
    X, y = as_rows(data_points, loss_values)
    if n_params == 0:
        return numpy.zeros(1)
    space = settings["space"]
    known = fitted.get(fingerprint(X, y))
    if known is not None:
        return numpy.asarray(known, dtype=float)
    keep = inside(y, fence_bounds(y, settings["fence"]))
    threshold = huber_threshold(y[keep], space, settings["huber_delta"])
    starts = starts_for(law, X[keep], y[keep], fitted.values(), space, threshold)[:8]
    best, best_cost = numpy.asarray(starts[0], dtype=float), numpy.inf
    for start in starts:
        theta, value = polish(law, X[keep], y[keep], start, space, threshold)
        if value < best_cost:
            best, best_cost = theta, value
    return best


# In the order a program defines them (each may call the ones before it).
EMBEDDED = (as_rows, as_columns, fingerprint, fence_bounds, inside, huber_threshold, residuals, cost, polish,
            starts_for, fit_group)
