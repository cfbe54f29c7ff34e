"""The offline proposer as the loop uses it: initial population, children of parents, lineage."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from sld.discovery.proposers.offline import DEFAULT_WEIGHTS, OfflineProposer, OfflineSettings
from sld.discovery.proposers.base import ProposalContext, Scored
from sld.evaluators.formula import FormulaError, parse_law
from sld.tasks import Rows, TaskSpec, TrainingTask, load_task

OPERATORS = set(DEFAULT_WEIGHTS) | {"crossover", "library"}


@functools.cache
def training(name: str) -> TrainingTask:
    return load_task(name).training_view()


def scored(law_id: int, text: str, spec: TaskSpec, value: float = 0.5) -> Scored:
    law = parse_law(text, spec)
    return Scored(law_id=law_id, law=law, score=1.0 / law_id, validation_nmse=0.1,
                  params={"all": {p: value for p in law.param_names}})


def context(task: TrainingTask, parents: tuple[Scored, ...], generation: int = 1, **extra) -> ProposalContext:
    return ProposalContext(task=task, parents=parents, generation=generation, seed=generation, **extra)


CHINCHILLA_PARENTS = ("E + A/N**alpha + B/D**beta", "A/(N**a*D**b) + E", "E + A*exp(-k*D/N)")


def chinchilla_context(generation: int = 1) -> ProposalContext:
    task = training("chinchilla_epoch_replication")
    parents = tuple(scored(i + 1, text, task.spec) for i, text in enumerate(CHINCHILLA_PARENTS))
    return context(task, parents, generation)


def test_initial_population_is_distinct_and_diverse():
    spec = load_task("vocab_scaling_law").spec
    population = OfflineProposer(spec, seed=0).initial_population(16)
    assert len(population) == 16
    laws = [parse_law(p.formula, spec) for p in population]
    assert len({law.key for law in laws}) == 16
    assert all(p.proposer == "offline" and p.operator == "library" and p.parent_ids == () for p in population)
    families = {p.rationale.split()[2] for p in population}  # "library family <name> (...)"
    assert len(families) >= 10
    assert all(law.n_params <= 7 for law in laws)


def test_initial_population_stops_when_the_library_is_used_up():
    spec = load_task("easy_question_scaling_law").spec
    population = OfflineProposer(spec, seed=0).initial_population(500)
    assert 3 <= len(population) < 500
    assert len({parse_law(p.formula, spec).key for p in population}) == len(population)


def test_seed_formulas_come_first_and_are_marked_as_seeds():
    spec = load_task("sft_scaling_law").spec
    proposer = OfflineProposer(spec, seed=0, seeds=["A/(D**alpha + B) + C"])
    population = proposer.initial_population(5)
    assert population[0].proposer == "seed" and population[0].formula == "A/(D**alpha + B) + C"
    assert all(p.proposer == "offline" for p in population[1:])


def test_a_bad_seed_formula_is_a_one_line_error():
    with pytest.raises(FormulaError):
        # five identifiable parameters over a budget of four (B + C + G + K would reduce to one)
        OfflineProposer(load_task("sft_scaling_law").spec, seed=0, seeds=["A/(D**alpha + B) + C*D**beta"])


def test_without_parents_it_proposes_library_laws():
    task = training("moe_scaling_law")
    proposer = OfflineProposer(task.spec, seed=0)
    out = proposer.propose(context(task, ()), 6)
    assert len(out) == 6
    assert {p.operator for p in out} == {"library"}


def test_children_of_parents_parse_within_budget_with_lineage():
    ctx = chinchilla_context()
    proposer = OfflineProposer(ctx.task.spec, seed=1)
    out = proposer.propose(ctx, 16)
    assert len(out) >= 14
    parent_ids = {p.law_id for p in ctx.parents}
    parent_keys = {p.law.key for p in ctx.parents}
    keys = set()
    for proposal in out:
        law = parse_law(proposal.formula, ctx.task.spec)
        keys.add(law.key)
        assert law.key not in parent_keys
        assert proposal.proposer == "offline"
        assert proposal.operator in OPERATORS
        if proposal.operator == "library":
            assert proposal.parent_ids == ()
        else:
            assert proposal.parent_ids and set(proposal.parent_ids) <= parent_ids
    assert len(keys) == len(out), "no duplicate keys within a batch"
    assert len({p.operator for p in out}) >= 4


def test_keys_are_not_proposed_twice_across_calls():
    proposer = OfflineProposer(load_task("chinchilla_epoch_replication").spec, seed=2)
    spec = proposer.spec
    first = {parse_law(p.formula, spec).key for p in proposer.propose(chinchilla_context(1), 12)}
    second = {parse_law(p.formula, spec).key for p in proposer.propose(chinchilla_context(2), 12)}
    assert first and second and not first & second


def test_proposals_are_reproducible_for_a_seed():
    spec = load_task("chinchilla_epoch_replication").spec

    def run(seed: int) -> list[str]:
        proposer = OfflineProposer(spec, seed=seed)
        texts = [p.formula for p in proposer.initial_population(8)]
        texts += [p.formula for p in proposer.propose(chinchilla_context(1), 10)]
        return texts + [p.formula for p in proposer.propose(chinchilla_context(2), 10)]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_a_parent_at_its_budget_still_gets_children_within_budget():
    task = training("parallel_scaling_law")  # budget 4
    parents = (scored(1, "(A/(N*(k*log(P) + 1)))**alpha + E", task.spec),
               scored(2, "E + A/(N**a*P**b)", task.spec))
    out = OfflineProposer(task.spec, seed=0).propose(context(task, parents), 10)
    assert len(out) >= 6
    assert all(parse_law(p.formula, task.spec).n_params <= 4 for p in out)


def test_multi_target_children_keep_one_expression_per_target():
    task = training("domain_mixture_scaling_law")
    lines = [f"c{i} + k{i}*exp(-t{i}*r{i})" for i in range(1, 6)]
    other = [f"a{i} + b{i}*r{i} + g*r1" for i in range(1, 6)]
    parents = (scored(1, "\n".join(lines), task.spec), scored(2, "\n".join(other), task.spec))
    out = OfflineProposer(task.spec, seed=0).propose(context(task, parents), 6)
    assert len(out) >= 4
    for proposal in out:
        law = parse_law(proposal.formula, task.spec)
        assert len(law.outputs) == 5 and law.n_params <= 35


def test_odd_parents_and_params_never_raise():
    task = training("chinchilla_epoch_replication")
    spec = task.spec
    odd = (
        Scored(law_id=1, law=parse_law("N", spec), score=math.inf, validation_nmse=math.nan, params={}),
        Scored(law_id=2, law=parse_law("max(N, D)*abs(a - D)", spec), score=1.0, validation_nmse=1.0,
               params={"g": {"a": "not a number"}, "h": None}),  # type: ignore[dict-item]
        Scored(law_id=3, law=parse_law("1.69 + 406.4/N**0.34", spec), score=1.0, validation_nmse=1.0,
               params={"g": {"x": float("nan")}}),
    )
    out = OfflineProposer(spec, seed=0).propose(context(task, odd), 12)
    for proposal in out:
        parse_law(proposal.formula, spec)


def test_feature_kinds_come_from_the_training_rows_when_given():
    # A synthetic user task whose words say nothing, but whose rows contain zeros.
    spec = TaskSpec(name="user", description="synthetic", features=[{"column": "amount", "symbol": "s"}],
                    targets=[{"column": "y"}], scale=("amount",))
    rows = Rows(np.array([[0.0], [0.5], [1.0]]), np.array([[1.0], [2.0], [3.0]]), np.array(["a"] * 3, dtype=object))
    from_words = OfflineProposer(spec, seed=0)
    from_rows = OfflineProposer(spec, seed=0, train=rows)
    assert from_words.profile.features[0].kind == "positive"
    assert from_rows.profile.features[0].kind == "nonnegative"
    assert all("log(s)" not in p.formula for p in from_rows.initial_population(20))
    # Without ``train``, the first propose call reads the rows of its context instead.
    task = TrainingTask(spec=spec, train=rows, data_path=None)  # type: ignore[arg-type]
    from_words.propose(context(task, ()), 1)
    assert from_words.profile.features[0].kind == "nonnegative"


def test_settings_reject_unknown_operators():
    with pytest.raises(ValueError, match="unknown operator"):
        OfflineSettings(operator_weights={"teleport": 1.0})


def test_settings_can_turn_operators_off():
    settings = OfflineSettings(operator_weights={"remove_term": 1.0}, crossover_rate=0.0, immigrant_rate=0.0)
    ctx = chinchilla_context()
    out = OfflineProposer(ctx.task.spec, seed=0, settings=settings).propose(ctx, 4)
    assert out and {p.operator for p in out} == {"remove_term"}
