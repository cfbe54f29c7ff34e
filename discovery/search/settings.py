"""Typed settings of a discovery campaign (stored with the campaign in the archive)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from sld.discovery.search.selection import FinalChoice
from sld.evaluators.fitting import FitOptions
from sld.evaluators.validation import DEFAULT_SEARCH_FIT_RUNS, ValidationSplit


class CampaignSettings(BaseModel):
    """Everything that shapes a campaign; a resumed campaign reuses these exactly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=0, ge=0, description="seed of every random choice (NumPy needs it non-negative)")
    budget: int = Field(default=400, ge=1, description="candidates evaluated (duplicates are free)")
    minutes: float | None = Field(default=None, gt=0, description="wall-time budget")
    workers: int = Field(default=2, ge=0, description="worker processes; 0 evaluates in-process")
    candidate_timeout_s: float = Field(default=60.0, gt=0, description="wall-clock safety net per candidate "
                                       "in a worker (a hung fit); a candidate cut off is recorded as timed out")
    # Where the candidates run changes how fast a campaign goes, never what it finds: not archived
    # (exclude), so a campaign resumes on whichever backend it is given (the local pool by default).
    backend: Literal["local", "ray"] = Field(default="local", exclude=True, description="where candidates "
                                             "are evaluated: 'local' worker processes, or 'ray' actors "
                                             "(the optional extra: pip install 'sld[ray]')")
    ray_address: str | None = Field(default=None, exclude=True, description="the Ray cluster to join "
                                    "('auto': the one `ray start` runs here); None starts a local Ray "
                                    "instance of `workers` CPUs")
    islands: int = Field(default=4, ge=1)
    children_per_island: int = Field(default=4, ge=1, description="proposals per island per round")
    island_size: int = Field(default=24, ge=2, description="members kept per island")
    migration_every: int = Field(default=5, ge=1, description="rounds between migrations")
    tournament: int = Field(default=3, ge=1)
    parents_per_proposal: int = Field(default=2, ge=1)
    initial_population: int = Field(default=40, ge=1)
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    validation_folds: int = Field(default=2, ge=1, description="rolling-origin validation folds (at least one per "
                                  "extrapolation axis: the joint scale and each of several scale features; "
                                  "random folds scored in the search, for tasks without a scale)")
    validation_fence: float | None = Field(
        default=3.0, gt=0, description="IQRs: validation runs whose target lies further from the training "
        "quartiles are not scored (the fit's own fence, for training runs, is fit.outlier_fence)")
    validation_per_scale_point: bool = Field(
        default=False, description="score held-out runs at each scale point of at least 4 of them "
        "against that point's own spread, as a test split of one larger model swept over its other "
        "settings is scored (a law must predict how those settings move the loss there)")
    # Measured (docs/campaigns.md, "Screening fits"): on the learning-rate sweep (1,911 runs in one
    # group) 256 cut a 400-law campaign from 11 to under 3 minutes on 2 cores with the same
    # pseudo-test quality; groups of at most 256 runs (all but two curated tasks) are unaffected.
    search_fit_runs: int | None = Field(
        default=DEFAULT_SEARCH_FIT_RUNS, ge=8, description="the search fits a group of more training runs "
        "on a seeded random subset of this many (every held-out run is still scored; the final choice and "
        "refit use every run); None fits every run")
    complexity_penalty: float = Field(default=0.004, ge=0, description="relative score penalty per node")
    seed_human_laws: bool = Field(default=False, description="start from the task's published laws too")
    proposer: Literal["offline", "llm", "mixed"] = "offline"
    llm_share: float = Field(default=0.5, ge=0, le=1, description="share of LLM children when mixed")
    # A cheaper search per candidate than a one-off fit; the finalists are refitted in full.
    # Runs 8 IQRs beyond the targets' quartiles are diverged runs (a loss of 11 among
    # losses near 2.5), not small-scale runs: on the curated tasks only the learning-rate
    # sweep has any, and under squared error they would set every fitted parameter.
    # Where the fence leaves a run out, the fit's loss is Huber ('auto', evaluators.fitting.resolve_loss):
    # runs that nearly diverged stay inside the fence and would otherwise bend the valley.
    # The campaign's seed reaches these fits too (see ``_seed_reaches_the_fits``).
    # The search polishes for 100 iterations (a batch runs as long as its slowest start);
    # the finalists are re-scored with a one-off fit's full effort.
    # One multi-start per search fit: the search compares hundreds of laws and keeps the best
    # few; the finalists' refits run the full effort's independent multi-starts (n_seeds).
    fit: FitOptions = FitOptions(n_starts=24, n_refine=8, n_polish=2, max_nfev=100, outlier_fence=8.0,
                                 loss="auto", n_seeds=1)
    max_condition: float | None = Field(
        default=None, gt=1, description="refuse a candidate whose fit's Jacobian condition number exceeds "
        "this on some fold (parameters the runs do not pin down); None keeps them (measured: see "
        "docs/fitting.md)")
    final_choice: FinalChoice = Field(
        default="consensus", description="'consensus' (chosen on pseudo-tasks, docs/selection_protocol.md): "
        "the finalist whose refit's predictions beyond the runs sit closest to the median of the other "
        "finalists'; 'search': keep the best law by the search's own validation score; "
        "'rescored': re-score the finalists with full-effort fits on every fold, then choose by "
        "final_folds and the simpler-law rule; 'stable': of the finalists within stable_tolerance of the "
        "best search score, the one whose predictions beyond the runs move least when the runs are resampled")
    plausible_width: float | None = Field(
        default=1.0, gt=0, description="pass over a chosen law whose refit on every training run predicts, "
        "beyond the runs, outside the training targets widened by this many of their own spreads (in log "
        "space for positive targets) for the next finalist that stays inside; None keeps the choice as made")
    finalists: int = Field(default=8, ge=1, description="best laws re-scored with full-effort fits at the end")
    restarts: int = Field(default=1, ge=1, le=32, description="independent searches (restarts) of `budget` "
                          "candidates each, with seeds seed*restarts .. seed*restarts+restarts-1, whose finalists "
                          "are pooled for one final choice (docs/campaigns.md, \"Pooled restarts\"); costs "
                          "restarts times as much as one campaign")
    pool: int | None = Field(default=None, ge=1, description="set by the campaign itself: the id of the pooled "
                             "campaign this one is a restart of (None: a campaign of its own)")
    ensemble_size: int = Field(default=5, ge=0, description="best laws by validation score whose median "
                               "prediction is reported beside the chosen law (0: no ensemble)")
    stable_tolerance: float = Field(default=0.05, ge=0, description="'stable' final choice: finalists within "
                                    "this share of the best search score compete on their spread")
    stable_resamples: int = Field(default=10, ge=2, description="'stable' final choice: bootstrap refits per "
                                  "finalist (at the search's fit effort) to measure its spread")
    final_folds: Literal["worst", "mean"] = Field(default="worst", description="how the final choice "
                                                  "combines a finalist's validation folds: its worst fold, or "
                                                  "their mean as in the search")
    simpler_tolerance: float = Field(default=0.1, ge=0, description="a finalist this close (relative) to the "
                                     "best final score may replace it if it is much simpler")
    simpler_ratio: float = Field(default=0.7, gt=0, le=1, description="at most this share of the best "
                                 "finalist's complexity counts as much simpler (1: any simpler law)")

    @field_validator("backend")
    @classmethod
    def _ray_needs_workers(cls, backend: str, info: ValidationInfo) -> str:
        if backend == "ray" and info.data.get("workers") == 0:
            raise ValueError("the Ray backend evaluates in Ray workers: give workers >= 1")
        return backend

    @field_validator("ray_address")
    @classmethod
    def _address_needs_ray(cls, address: str | None, info: ValidationInfo) -> str | None:
        if address is not None and info.data.get("backend") != "ray":
            raise ValueError("a Ray address needs backend 'ray' (--backend ray)")
        return address

    @model_validator(mode="after")
    def _pools_choose_by_forecast(self) -> "CampaignSettings":
        if self.restarts > 1 and self.final_choice not in ("consensus", "search"):
            raise ValueError(f"pooled restarts choose by 'consensus' or 'search', not {self.final_choice!r}: "
                             "drop --final-choice, or give --restarts 1")
        if self.restarts > 1 and self.pool is not None:
            raise ValueError("a restart of a pool is one search: restarts must be 1 when pool is set")
        return self

    @model_validator(mode="before")
    @classmethod
    def _seed_reaches_the_fits(cls, data: object) -> object:
        """One seed for every random choice: the search fits' starts use the campaign's seed.

        Also reads settings stored under an earlier name (``outlier_fence``).
        """
        if not isinstance(data, dict):
            return data
        if "outlier_fence" in data:  # its name in campaigns archived before it was renamed
            data = {**{k: v for k, v in data.items() if k != "outlier_fence"},
                    "validation_fence": data["outlier_fence"]}
        seed = data.get("seed", 0)
        fit = data.get("fit", cls.model_fields["fit"].default)
        fit = {**fit, "seed": seed} if isinstance(fit, dict) else fit.model_copy(update={"seed": seed})
        return {**data, "fit": fit}

    def model_copy(self, *, update: dict | None = None, deep: bool = False) -> "CampaignSettings":
        """A copy with ``update`` over these settings, validated like new settings.

        Pydantic's own ``model_copy`` skips validation, so a new ``seed`` would not
        reach the fits (``_seed_reaches_the_fits``) and a bad value would pass:
        a benchmark that copied settings per seed once fitted every seed's laws
        with seed 0's starts.
        """
        if not update:
            return super().model_copy(deep=deep)
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_validate({**fields, **update})

    @classmethod
    def from_archive(cls, stored: dict, **update: object) -> "CampaignSettings":
        """Settings stored with a campaign, with ``update`` (budget, backend...) over them, validated.

        A setting added since the campaign was archived takes the value that reproduces how it ran,
        not today's default: a resumed campaign goes on as it started.
        """
        if isinstance(stored.get("fit"), dict):
            stored = {**stored, "fit": {**_FIT_BEFORE_IT_EXISTED, **stored["fit"]}}
        return cls.model_validate({**_BEFORE_THEY_EXISTED, **stored, **update})

    def validation_split(self) -> ValidationSplit:
        """The search's cuts of the training rows: its folds, fence, seed and screening subsets."""
        return ValidationSplit(fraction=self.validation_fraction, seed=self.seed, folds=self.validation_folds,
                               outlier_fence=self.validation_fence, max_fit_runs=self.search_fit_runs,
                               per_scale_point=self.validation_per_scale_point)

    def full_fit(self) -> FitOptions:
        """The campaign's loss, space and fence with a one-off fit's full-effort search.

        Used to re-score the finalists and for the final refit on all training rows.
        """
        return self.fit.at_full_effort(self.seed)


# Settings added after campaigns were first archived, with the value that reproduces an older campaign.
_BEFORE_THEY_EXISTED: dict[str, object] = {"search_fit_runs": None, "plausible_width": None,
                                           "validation_per_scale_point": False}
# Likewise for the search's fit options (``fit``): one multi-start before independent ones existed.
_FIT_BEFORE_IT_EXISTED: dict[str, object] = {"n_seeds": 1}
