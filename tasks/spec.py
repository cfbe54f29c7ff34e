"""Typed description of a scaling-law task: what was measured, and how to split it.

A task is a CSV of training runs plus a TOML file (this schema) that names the
columns.  Curated tasks ship their TOML beside their data; a user's own task is
the same TOML pointing to their own CSV, so both go through one code path.
"""

from __future__ import annotations

import keyword
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Names a formula reserves for functions; a feature symbol may not take one.
RESERVED_NAMES = frozenset(
    {"exp", "log", "ln", "log2", "log10", "sqrt", "abs", "tanh", "sigmoid", "min", "max"}
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Feature(_Frozen):
    """One input column of the runs table, and the short symbol laws use for it."""

    column: str
    symbol: str
    meaning: str = ""
    unit: str = ""

    @field_validator("symbol")
    @classmethod
    def _symbol_is_identifier(cls, symbol: str) -> str:
        if not symbol.isidentifier() or keyword.iskeyword(symbol) or symbol.startswith("_"):
            raise ValueError(f"symbol {symbol!r} must be a plain identifier (letters, digits, _)")
        if symbol in RESERVED_NAMES:
            raise ValueError(f"symbol {symbol!r} is the name of a formula function; pick another")
        return symbol


class Target(_Frozen):
    """One output column a law predicts."""

    column: str
    meaning: str = ""
    unit: str = ""


class HumanLaw(_Frozen):
    """A published law written in our formula syntax, with where it comes from.

    ``fitted_on_test_rows`` marks a law whose published constants were fitted
    on data that includes this task's test rows (e.g. a refit on every point
    of the dataset).  Its test R² measures interpolation, not extrapolation,
    so it is reported for reference but is neither the bar a discovered law
    must clear nor a campaign's starting point (that would carry the test
    rows into the search).
    """

    name: str
    formula: str
    citation: str
    note: str = ""
    # How the authors fit it: a law published for log-loss is fitted on log residuals.
    space: Literal["linear", "log"] = "linear"
    loss: Literal["squared", "huber"] = "squared"
    fitted_on_test_rows: bool = False


class TaskSpec(_Frozen):
    """Everything about a task except its rows.

    ``scale`` names the feature column(s) that measure scale.  Discovery holds
    out the largest-scale training runs of each group as validation, so that
    selection rewards extrapolation (with several scale features, along their
    joint scale and along each one alone); with no scale feature it
    cross-validates on disjoint seeded random folds instead.
    """

    name: str
    description: str
    csv: str = "data.csv"
    features: tuple[Feature, ...] = Field(min_length=1)
    targets: tuple[Target, ...] = Field(min_length=1)
    group_column: str | None = None
    split_column: str | None = None
    scale: tuple[str, ...] = ()
    # With no split column, the test split is this fraction of each group's
    # largest-scale runs (a user's task need not split its own data).
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    param_budget: int | None = Field(default=None, ge=1)
    human_laws: tuple[HumanLaw, ...] = ()
    source: str = ""
    higher_is_better: bool = False
    kind: Literal["curated", "user"] = "user"
    # Training compute as a formula over feature symbols (e.g. "6*N*D"), for `sld optimal`;
    # parsed by the evaluators' whitelisted formula parser when it is used, never eval'd.
    compute: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _names_are_consistent(self) -> "TaskSpec":
        symbols = [f.symbol for f in self.features]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"feature symbols must be distinct, got {symbols}")
        columns = [f.column for f in self.features]
        for name in self.scale:
            if name not in columns:
                raise ValueError(f"scale feature {name!r} is not one of the feature columns {columns}")
        if self.split_column is None and not self.scale:
            raise ValueError(
                "a task without a split column needs 'scale' (its test split is the largest-scale runs)"
            )
        return self

    @property
    def extrapolating_human_laws(self) -> tuple[HumanLaw, ...]:
        """The human laws whose constants never saw the test rows: the bar, and the starting points."""
        return tuple(h for h in self.human_laws if not h.fitted_on_test_rows)

    @property
    def starting_formulas(self) -> tuple[str, ...]:
        """The formulas a campaign seeded with human laws starts from (each once)."""
        return tuple(dict.fromkeys(h.formula for h in self.extrapolating_human_laws))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(f.symbol for f in self.features)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.features)

    @property
    def scale_indices(self) -> list[int]:
        """Positions of the ``scale`` columns among the features (columns of ``Rows.X``)."""
        return [self.feature_columns.index(c) for c in self.scale]

    @property
    def target_columns(self) -> tuple[str, ...]:
        return tuple(t.column for t in self.targets)
