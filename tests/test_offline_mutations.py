"""Mutation and crossover of laws as SymPy trees: parseable, distinct, within budget, reproducible."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from sld.discovery.proposers.offline import DEFAULT_WEIGHTS, Mutator, profile_task
from sld.discovery.proposers.offline.mutations import GROWING
from sld.evaluators.formula import parse_law
from sld.evaluators.printing import law_to_text
from sld.tasks import load_task


@functools.cache
def setup(task_name: str):
    spec = load_task(task_name).spec
    return spec, Mutator(profile_task(spec))


def law(task_name: str, text: str):
    return parse_law(text, setup(task_name)[0])


PARENTS = [
    ("chinchilla_epoch_replication", "E + A/N**alpha + B/D**beta"),
    ("chinchilla_epoch_replication", "1.69 + 406.4/N**0.34 + 410.7/D**0.28"),  # no free parameter
    ("sft_scaling_law", "A/(D**alpha + B) + C"),
    ("easy_question_scaling_law", "a0 + a1*F + a2*F**2"),
    ("moe_scaling_law", "exp(a*log(N) + b*log(E) + c*log(N)*log(E) + d)"),
    ("vocab_scaling_law", "A/N**alpha + B/V**beta + C/H**gamma + E"),
    ("lr_bsz_scaling_law", "C + A/N**alpha + B/D**beta + F*(log(lr) - m)**2 + abs(bsz - G)"),
    ("data_constrained_scaling_law", "E0 + A/min(N, k*U)**alpha + B*max(D/U - 1, 0)"),
]


def children(task_name, parent, operator, tries=40, seed=0, fitted=None):
    _, mutator = setup(task_name)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(tries):
        child = mutator.mutate(parent, rng, operator, fitted)
        if child is not None:
            out.append(child)
    return out


@pytest.mark.parametrize(("task_name", "text"), PARENTS)
def test_random_mutations_parse_differ_from_parent_and_respect_budget(task_name, text):
    spec, mutator = setup(task_name)
    parent = law(task_name, text)
    budget = spec.param_budget or 24
    fitted = {p: 0.7 for p in parent.param_names}
    rng = np.random.default_rng(1)
    kids = [mutator.mutate(parent, rng, fitted=fitted) for _ in range(40)]
    kids = [k for k in kids if k is not None]
    assert len(kids) >= 20
    assert len({k.law.key for k in kids}) >= 12, "mostly distinct children"
    for kid in kids:
        assert kid.law.key != parent.key
        assert kid.law.n_params <= budget
        assert kid.law.n_params >= 1 or parent.n_params == 0
        assert kid.operator in DEFAULT_WEIGHTS
        reparsed = parse_law(law_to_text(kid.law.outputs), spec)
        assert reparsed.key == kid.law.key  # the printed child reads back as itself


@pytest.mark.parametrize("operator", sorted(DEFAULT_WEIGHTS))
def test_every_operator_works_on_an_ordinary_law(operator):
    parent = law("chinchilla_epoch_replication", "E + A/N**alpha + B/(D + 2)**beta")
    kids = children("chinchilla_epoch_replication", parent, operator,
                    fitted={p: 0.3 for p in parent.param_names})
    assert kids, f"{operator} never produced a child"
    assert all(k.operator == operator and k.law.key != parent.key for k in kids)
    if operator in GROWING:
        assert all(k.law.n_params > parent.n_params for k in kids)
    if operator in ("drop_param", "freeze_param"):
        assert all(k.law.n_params < parent.n_params for k in kids)


def test_new_parameters_never_reuse_a_feature_name():
    # In the MoE task E is a feature (number of experts): a new offset must get another name.
    parent = law("moe_scaling_law", "A/N**alpha")
    kids = children("moe_scaling_law", parent, "add_offset")
    assert kids
    for kid in kids:
        assert "E" not in kid.law.param_names
        assert kid.law.n_params == 3


def test_new_parameters_never_collide_with_existing_ones():
    parent = law("vocab_scaling_law", "A/N**alpha + B/V**beta + C/H**gamma + E")
    for kid in children("vocab_scaling_law", parent, "add_term", tries=20):
        assert set(parent.param_names) < set(kid.law.param_names)


def test_a_law_at_its_budget_only_gets_operators_that_do_not_grow_it():
    spec, mutator = setup("parallel_scaling_law")  # budget 4
    parent = law("parallel_scaling_law", "(A/(N*(k*log(P) + 1)))**alpha + E")
    rng = np.random.default_rng(2)
    for _ in range(100):
        assert mutator.choose_operator(parent, rng) not in GROWING
    kids = [mutator.mutate(parent, rng) for _ in range(60)]
    assert all(k.law.n_params <= 4 for k in kids if k is not None)
    assert sum(k is not None for k in kids) >= 20


def test_small_and_large_children_both_appear():
    parent = law("vocab_scaling_law", "A/N**alpha + B/V**beta + E")
    sizes = [k.law.n_params for k in children("vocab_scaling_law", parent, None, tries=80, seed=3,
                                              fitted={"A": 1.0, "alpha": 0.3})]
    assert min(sizes) < parent.n_params < max(sizes)


def test_freeze_param_uses_the_fitted_value_rounded():
    parent = law("sft_scaling_law", "A/(D**alpha + B) + C")
    fitted = {"A": 12.3456, "alpha": 0.51234, "B": 3.1, "C": 0.9}
    kids = children("sft_scaling_law", parent, "freeze_param", fitted=fitted)
    assert {k.law.text for k in kids} >= {"C + 12.3/(B + D**alpha)", "A/(B + D**0.512) + C"}


def test_mutation_is_reproducible_for_a_seed():
    parent = law("chinchilla_epoch_replication", "E + A/N**alpha + B/D**beta")
    first = [k.law.text for k in children("chinchilla_epoch_replication", parent, None, seed=11)]
    second = [k.law.text for k in children("chinchilla_epoch_replication", parent, None, seed=11)]
    other = [k.law.text for k in children("chinchilla_epoch_replication", parent, None, seed=12)]
    assert first == second
    assert first != other


def test_crossover_mixes_two_single_target_parents():
    spec, mutator = setup("chinchilla_epoch_replication")
    first = law("chinchilla_epoch_replication", "E + A/N**alpha + B/D**beta")
    second = law("chinchilla_epoch_replication", "G + K*exp(-c*D/N)")
    rng = np.random.default_rng(4)
    kids = [k for k in (mutator.crossover(first, second, rng) for _ in range(30)) if k is not None]
    assert len(kids) >= 10
    for kid in kids:
        assert kid.operator == "crossover"
        assert kid.law.key not in (first.key, second.key)
        assert kid.law.n_params <= 24


def test_crossover_renames_donor_parameters_apart():
    spec, mutator = setup("sft_scaling_law")
    first = law("sft_scaling_law", "A/D**alpha + E")
    second = law("sft_scaling_law", "A*exp(-alpha*D) + E")  # same names, different meaning
    rng = np.random.default_rng(5)
    kids = [k for k in (mutator.crossover(first, second, rng) for _ in range(40)) if k is not None]
    # grafting A*exp(-alpha*D) into A/D**alpha + E must not tie the two A's or alphas together
    assert any(k.law.n_params > first.n_params for k in kids)
    assert all(k.law.n_params <= 4 for k in kids)


def test_crossover_swaps_whole_outputs_of_multi_target_laws():
    spec, mutator = setup("domain_mixture_scaling_law")
    lines_a = [f"a{i} + b{i}*r{i}" for i in range(1, 6)]
    lines_b = [f"c{i} + d*exp(-k{i}*r{i})" for i in range(1, 6)]
    first, second = law("domain_mixture_scaling_law", "\n".join(lines_a)), \
        law("domain_mixture_scaling_law", "\n".join(lines_b))
    rng = np.random.default_rng(6)
    kids = [k for k in (mutator.crossover(first, second, rng) for _ in range(12)) if k is not None]
    assert kids
    for kid in kids:
        assert len(kid.law.outputs) == 5
        assert kid.law.n_params <= 35
    swapped = [k for k in kids if k.detail.startswith("outputs")]
    assert swapped
    for kid in swapped:
        assert any(str(o) in {str(x) for x in first.outputs} for o in kid.law.outputs)


def test_odd_parents_never_raise():
    spec, mutator = setup("chinchilla_epoch_replication")
    rng = np.random.default_rng(7)
    odd = ["N", "max(N, D)", "abs(N - D)*tanh(N/D)", "sigmoid(a*N)", "0*N + 1e-300*D", "exp(exp(N/D))"]
    for text in odd:
        parent = law("chinchilla_epoch_replication", text)
        for operator in DEFAULT_WEIGHTS:
            for _ in range(3):
                mutator.mutate(parent, rng, operator, fitted={"a": float("nan")})
        mutator.crossover(parent, law("chinchilla_epoch_replication", "E + A/N**alpha"), rng)


def test_unknown_operator_is_an_error():
    _, mutator = setup("sft_scaling_law")
    with pytest.raises(ValueError, match="unknown mutation operator"):
        mutator.mutate(law("sft_scaling_law", "A/D**alpha + E"), np.random.default_rng(0), "teleport")
    with pytest.raises(ValueError, match="unknown operator"):
        Mutator(profile_task(load_task("sft_scaling_law").spec), weights={"teleport": 1.0})


def test_children_with_two_lone_parameters_side_by_side_are_refused():
    spec, mutator = setup("chinchilla_epoch_replication")
    parent = law("chinchilla_epoch_replication", "E + A/N**alpha")
    A, C, E, G, alpha = (parse_law(f"{n}*N", spec).params[0] for n in ("A", "C", "E", "G", "alpha"))
    N = parent.features[0]
    assert mutator.finish((E + A * C * N**-alpha,), "test", "", (parent,)) is None  # A*C is one parameter
    assert mutator.finish((E + G + A * N**-alpha,), "test", "", (parent,)) is None  # so is E + G
    kept = mutator.finish((E + A * N**-alpha + A * C,), "test", "", (parent,))  # A also stands elsewhere
    assert kept is not None and kept.law.n_params == 4


def test_a_child_s_constants_carry_no_binary_noise_from_sympy_arithmetic():
    """0.1 + 0.2 in a child prints as 0.3, not 0.30000000000000004: the law a user reads is the law fitted."""
    import sympy

    spec, mutator = setup("chinchilla_epoch_replication")
    parent = law("chinchilla_epoch_replication", "E + A/N**alpha")
    A, E = (parse_law(f"{n}*N", spec).params[0] for n in ("A", "E"))
    N = parent.features[0]
    noisy = E + (sympy.Float(0.1) + sympy.Float(0.2)) * A * N**(sympy.Float(0.4) + sympy.Float(0.513187))
    child = mutator.finish((noisy,), "test", "", (parent,))
    assert child is not None
    assert "0.3*" in child.law.text and "0.913187" in child.law.text, child.law.text
    assert "0000000" not in child.law.text and "9999999" not in child.law.text


def test_random_mutations_rarely_write_a_redundant_parameter():
    """Chains of random mutations from every parent: how often does the reduction still merge something?

    Every child is reduced by ``parse_law``, so redundancy never reaches the fit; but an
    operator that writes ``A*B`` wastes a proposal on a law it did not mean.  Measured on
    this seeded run: 10.5% of children before the operators reused coefficients, 1.1% after
    (the rest are mostly like terms made by replacing one feature with another).
    """
    rng = np.random.default_rng(7)
    made = merged = 0
    for task_name, text in PARENTS:
        _, mutator = setup(task_name)
        parent = current = law(task_name, text)
        for _ in range(60):
            child = mutator.mutate(current, rng, fitted={p: 0.7 for p in current.param_names})
            if child is None:
                continue
            made += 1
            merged += bool(child.law.reductions)
            current = child.law if rng.random() < 0.5 else parent
    share = merged / made
    print(f"\n{merged} of {made} mutated children ({share:.1%}) still had a redundant parameter to merge")
    assert made >= 300
    assert share < 0.04
