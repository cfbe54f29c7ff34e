"""Typed settings of an HTML report: how its intervals and bands are drawn."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# The bands need fewer resamples than a quoted interval (``sld predict`` and ``sld eval --ci``
# take 1,000); ``--resamples`` for more.
DEFAULT_REPORT_RESAMPLES = 200


class ReportSettings(BaseModel):
    """Bootstrap resamples, the intervals' level and the resampling seed of one report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resamples: int = Field(default=DEFAULT_REPORT_RESAMPLES, ge=1,
                           description="bootstrap resamples of the training runs within each group")
    level: float = Field(default=0.9, gt=0, lt=1, description="confidence level of the intervals and bands")
    seed: int = Field(default=0, ge=0, description="seed of the bootstrap's resampling")
