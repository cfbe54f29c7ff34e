"""The offline proposer's family library: every instance parses under the task's budget."""

from __future__ import annotations

import functools

import pytest
import sympy

from sld.discovery.proposers.offline import build_library, profile_task
from sld.discovery.proposers.offline.library import FAMILIES, recipes
from sld.evaluators.formula import parse_law
from sld.tasks import TaskSpec, curated_names, load_task


@functools.cache
def curated_library(name: str):
    spec = load_task(name).spec
    return spec, build_library(profile_task(spec))


def user_spec(targets=("loss",), param_budget=None) -> TaskSpec:
    """A user task (synthetic) with a positive scale feature, a fraction and a log-scale feature."""
    return TaskSpec(
        name="user_task",
        description="synthetic user task for tests",
        features=[
            {"column": "model_size", "symbol": "S", "unit": "parameters"},
            {"column": "mix", "symbol": "m", "unit": "fraction"},
            {"column": "log_compute", "symbol": "c", "meaning": "log10 of compute"},
        ],
        targets=[{"column": t} for t in targets],
        scale=("model_size",),
        param_budget=param_budget,
    )


def assert_valid_library(spec: TaskSpec, entries) -> None:
    budget = spec.param_budget if spec.param_budget is not None else 24
    assert entries, "the library is never empty"
    keys = [e.law.key for e in entries]
    assert len(set(keys)) == len(keys), "no two entries share a canonical key"
    for entry in entries:
        assert 1 <= entry.law.n_params <= budget
        assert len(entry.law.outputs) == len(spec.targets)
    for entry in entries[:5]:
        assert parse_law(entry.law.text, spec).key == entry.law.key  # the text the loop will see


@pytest.mark.parametrize("name", curated_names())
def test_curated_libraries_parse_within_budget(name):
    spec, entries = curated_library(name)
    assert_valid_library(spec, entries)


@pytest.mark.parametrize("name", [n for n in curated_names() if len(load_task(n).spec.features) > 1])
def test_multi_feature_libraries_span_many_families(name):
    _, entries = curated_library(name)
    assert len({e.family for e in entries}) >= 8


def test_single_feature_library_has_a_saturating_power_law():
    spec, entries = curated_library("sft_scaling_law")
    texts = {e.law.text for e in entries}
    assert "A/D**alpha + E" in texts
    assert {e.family for e in entries} >= {"power_offset", "shifted_power", "saturation", "polynomial"}


def test_chinchilla_style_additive_law_is_in_the_library():
    # A textbook form: every scale feature gets its own power law, plus an offset.
    spec, entries = curated_library("chinchilla_epoch_replication")
    additive = [e for e in entries if e.family == "additive"]
    assert [e.law.text for e in additive] == ["A/N**alpha + B/D**beta + E"]


def test_hyperparameter_optima_may_move_with_every_scale_feature():
    # The best learning rate shifts with both model and data size (StepLaw), so one valley
    # instance puts log N and log D in the optimum of each hyperparameter.
    spec, entries = curated_library("lr_bsz_scaling_law")
    valleys = {e.detail: e.law for e in entries if e.family == "valley"}
    assert set(valleys) == {"fixed optimum", "optimum moving with D", "optimum moving with D, N",
                            "interacting optima moving with D, N"}
    both = valleys["optimum moving with D, N"].outputs[0]
    N, D, lr = (next(s for s in both.free_symbols if s.name == name) for name in ("N", "D", "lr"))
    second = sympy.diff(both, lr, 2) * lr**2 + sympy.diff(both, lr) * lr  # d²/d(log lr)²: the curvature
    assert sympy.simplify(second).free_symbols & {N, D} == set()
    mixed_n = sympy.diff(sympy.diff(both, lr), N)  # the optimum in lr depends on N ...
    mixed_d = sympy.diff(sympy.diff(both, lr), D)  # ... and on D
    assert mixed_n != 0 and mixed_d != 0
    fixed = valleys["fixed optimum"].outputs[0]
    assert sympy.diff(fixed, lr, N) == 0
    # only the interacting variant lets the best learning rate depend on the batch size
    bsz = next(s for s in both.free_symbols if s.name == "bsz")
    assert sympy.diff(both, lr, bsz) == 0
    interacting = valleys["interacting optima moving with D, N"].outputs[0]
    assert sympy.diff(interacting, lr, bsz) != 0


def test_multi_target_laws_share_structure_across_targets():
    _, entries = curated_library("domain_mixture_scaling_law")
    for entry in entries:
        if "own feature" not in entry.detail:
            assert len({_shape(output) for output in entry.law.outputs}) == 1, entry.law.text


def _shape(expr: sympy.Expr) -> str:
    """The expression with every parameter blurred into one symbol (features kept)."""
    features = {s for s in expr.free_symbols if s.name.startswith("r") and s.name[1:].isdigit()}
    blur = sympy.Symbol("p")
    return sympy.srepr(expr.xreplace({s: blur for s in expr.free_symbols - features}))


def test_features_that_can_be_zero_get_no_bare_power_or_log():
    spec, entries = curated_library("domain_mixture_scaling_law")
    features = {sympy.Symbol(s, real=True) for s in spec.symbols}
    for entry in entries:
        for output in entry.law.outputs:
            for node in sympy.preorder_traversal(output):
                if isinstance(node, sympy.log):
                    assert node.args[0] not in features, entry.law.text
                if node.is_Pow and node.base in features:
                    assert node.exp.is_Integer and node.exp > 0, entry.law.text


def test_a_negative_feature_gets_polynomials_not_powers():
    spec, entries = curated_library("easy_question_scaling_law")
    F = sympy.Symbol("F", real=True)
    for entry in entries:
        for node in sympy.preorder_traversal(entry.law.outputs[0]):
            assert not isinstance(node, sympy.log), entry.law.text
            if node.is_Pow and node.base == F:
                assert node.exp.is_Integer and node.exp > 0, entry.law.text
    assert any(e.family == "polynomial" for e in entries)


@pytest.mark.parametrize("budget", [None, 3, 5])
def test_user_task_library_single_target(budget):
    spec = user_spec(param_budget=budget)
    entries = build_library(profile_task(spec))
    assert_valid_library(spec, entries)
    if budget == 3:
        assert all(e.law.n_params <= 3 for e in entries)


def test_user_task_library_two_targets_with_tight_budget():
    spec = user_spec(targets=("loss_a", "loss_b"), param_budget=7)
    entries = build_library(profile_task(spec))
    assert_valid_library(spec, entries)
    # E_t + A_t*S**-a with a shared exponent fits 7; so does the unshared form (6).
    assert any(e.family == "power_offset" and e.law.n_params <= 7 for e in entries)


def test_recipes_do_not_depend_on_rows_or_published_laws():
    # The library is a function of the spec alone: dropping the human laws changes nothing.
    spec = load_task("vocab_scaling_law").spec
    stripped = spec.model_copy(update={"human_laws": ()})
    assert [e.law.key for e in build_library(profile_task(spec))] == \
        [e.law.key for e in build_library(profile_task(stripped))]


def test_every_family_yields_for_some_curated_task():
    produced = set()
    for name in curated_names():
        produced |= {r.family for r in recipes(profile_task(load_task(name).spec))}
    assert len(produced) == len(FAMILIES)
