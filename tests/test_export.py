"""Law export: LaTeX, SymPy, Python and JSON, and `sld archive export`.

The generated Python and SymPy snippets are executed here, in the tests only,
to check that they compute / rebuild exactly the law.  Data are synthetic,
from planted laws.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from unittest import mock

import numpy as np
import pytest
import sympy

from sld.archive import Archive, ArchiveError, NewEntry
from sld.archive.export import export_entry, spec_for_campaign, to_json
from sld.evaluators.formula import FormulaError
from sld.evaluators.rendering import rebuild_code, safe_names, to_latex, to_python, to_sympy
from sld.discovery.cli import app as cli
from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import parse_law
from sld.tasks import Rows, curated_names, load_task


def run_source(source: str) -> dict:
    """Execute generated source in a fresh namespace (tests only)."""
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - this is the check
    return namespace


def sympy_value(expr: sympy.Expr, features, point, params) -> float:
    """The law's value at one point, computed by SymPy (independently of NumPy)."""
    values = {s: sympy.Float(v) for s, v in zip(features, point)}
    values |= {sympy.Symbol(name, real=True): sympy.Float(v) for name, v in params.items()}
    return float(expr.xreplace(values).evalf(30))


def stored(formula: str, params: dict, spec, **overrides) -> NewEntry:
    law = parse_law(formula, spec)
    values = dict(
        formula=formula, key=law.key, srepr=sympy.srepr(law.outputs[0]), complexity=law.complexity,
        n_params=law.n_params, proposer="offline", operator="library", generation=1, island=0,
        parent_ids=(), rationale="planted", status="ok", reason="", params=params,
        train={"nmse": 0.01}, validation={"nmse": 0.02}, score=0.02, diagnostics={}, seconds=0.1,
    )
    values.update(overrides)
    return NewEntry(**values)


CURATED_LAWS = [
    pytest.param(name, law.formula, id=f"{name}-{index}")
    for name in curated_names() for index, law in enumerate(load_task(name).spec.human_laws)
]


# -- LaTeX ---------------------------------------------------------------------------------
def test_latex_names_every_symbol_and_the_target(make_spec):
    spec = make_spec(targets=("val_loss",))
    law = parse_law("A/N**alpha + B/D**beta + E", spec)
    text = to_latex(law, spec)
    for piece in (r"\mathrm{val\_loss} = ", r"\alpha", r"\beta", "N", "D", "E"):
        assert piece in text
    filled = to_latex(law, spec, {"A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28, "E": 1.69})
    assert r"\alpha" not in filled and "406.4" in filled and "0.34" in filled and "1.69" in filled


def test_latex_one_line_per_target(make_spec):
    spec = make_spec(targets=("a", "b"))
    assert to_latex("c*N; k*D", spec).splitlines() == [r"\mathrm{a} = N c", r"\mathrm{b} = D k"]


# -- SymPy ---------------------------------------------------------------------------------
@pytest.mark.parametrize("task, formula", CURATED_LAWS)
def test_sympy_snippet_rebuilds_every_curated_human_law(task, formula):
    spec = load_task(task).spec
    law = parse_law(formula, spec)
    snippet = to_sympy(law, spec)
    assert "sympify" not in snippet and "parse_expr" not in snippet
    assert list(run_source(snippet)["outputs"]) == list(law.outputs)
    for target, expr in zip(spec.target_columns, law.outputs):
        assert f"# srepr: {sympy.srepr(expr)}" in snippet


def test_sympy_snippet_with_fitted_values_and_every_function(make_spec):
    spec = make_spec()
    law = parse_law(
        "A/N**alpha + max(B, D**(1/3), 2.5e-3) + sqrt(D)*exp(-c) + log2(N) + sigmoid(D) "
        "+ abs(D - 1) + tanh(N/D) + exp(1)*N + 2**(1/3)*D - 0.1234567890123*min(N, D)", spec)
    assert list(run_source(to_sympy(law, spec))["outputs"]) == list(law.outputs)
    values = {"A": 2.5, "alpha": 0.3, "B": -1.25, "c": 1e-3}
    expected = [o.xreplace({p: sympy.Float(values[p.name]) for p in law.params}) for o in law.outputs]
    assert list(run_source(to_sympy(law, spec, values))["outputs"]) == expected


def test_rebuild_code_handles_constants():
    x = sympy.Symbol("x", real=True)
    for expr in (sympy.E * x, sympy.zoo + x, x**sympy.Rational(-3, 7), sympy.Float(-0.1) * x):
        assert run_source("import sympy\nx = sympy.Symbol('x', real=True)\nv = "
                          + rebuild_code(expr, {"x": "x"}))["v"] == expr


# -- Python --------------------------------------------------------------------------------
def planted_rows(seed: int = 0) -> Rows:
    """Synthetic runs from the planted law loss = A/N**alpha + E, two groups with their own A."""
    rng = np.random.default_rng(seed)
    N = np.repeat(np.logspace(6, 9, 12), 2)
    D = rng.uniform(1e9, 1e10, N.size)
    groups = np.array(["small", "large"] * 12)
    A = np.where(groups == "small", 400.0, 250.0)
    y = A / N**0.3 + 1.7 + rng.normal(0, 1e-3, N.size)
    return Rows(np.column_stack([N, D]), y[:, None], groups)


def test_generated_python_reproduces_the_fitted_law(make_spec):
    spec = make_spec()
    law = parse_law("A/N**alpha + E", spec)
    rows = planted_rows()
    fitter = LawFitter(law, FitOptions(n_starts=8, n_polish=2)).fit(rows)
    expected = fitter.predict(rows)[:, 0]
    assert np.all(np.isfinite(expected))

    generic = run_source(to_python(law, spec, fitted=fitter.params_))
    for group, params in fitter.params_.items():
        mask = rows.groups == group
        N, D = rows.X[mask].T
        assert generic["FITTED_PARAMS"][group] == pytest.approx(params, rel=0, abs=0)
        np.testing.assert_allclose(generic["law"](N, D, params), expected[mask], rtol=1e-12)
        baked = run_source(to_python(law, spec, params=params, group=group))["law"]
        np.testing.assert_allclose(baked(N, D), expected[mask], rtol=1e-12)


def test_generated_python_is_elementwise_for_min_max_and_matches_sympy(make_spec):
    spec = make_spec()
    formula = ("max(A, N/D) + min(N**(1/3), 2.0, D*b) + sqrt(D)*exp(-b) + log10(N) + sigmoid(N/D - 1)"
               " + abs(D - N) * 1e-9 + tanh(N/D)")
    law = parse_law(formula, spec)
    params = {"A": 0.75, "b": 1e-8}
    function = run_source(to_python(law, spec))["law"]
    points = np.array([[1.0, 2.0], [3.0, 1.5], [1e3, 7.0], [50.0, 1e8]])
    got = function(points[:, 0], points[:, 1], params)
    want = [sympy_value(law.outputs[0], law.features, p, params) for p in points]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # Scalars work too, and integer inputs are not truncated.
    assert function(3, 2, params) == pytest.approx(sympy_value(law.outputs[0], law.features, (3, 2), params))


def test_generated_python_returns_one_array_per_target(make_spec):
    spec = make_spec(targets=("first", "second"))
    law = parse_law("a*N; b*D + N", spec)
    first, second = run_source(to_python(law, spec))["law"](np.array([1.0, 2.0]), np.array([3.0, 4.0]),
                                                            {"a": 2.0, "b": 10.0})
    np.testing.assert_array_equal(first, [2.0, 4.0])
    np.testing.assert_array_equal(second, [31.0, 42.0])


def test_names_that_clash_with_generated_code_are_renamed(make_spec):
    spec = make_spec(symbols=("numpy", "sympy", "outputs"))
    law = parse_law("params*numpy + sympy*outputs + params_", spec)
    python = run_source(to_python(law, spec))["law"]
    assert python(2.0, 3.0, 4.0, {"params": 5.0, "params_": 1.0}) == 5.0 * 2.0 + 3.0 * 4.0 + 1.0
    assert list(run_source(to_sympy(law, spec))["outputs"]) == list(law.outputs)
    assert safe_names(["numpy", "numpy_", "x"], {"numpy"}) == {"numpy": "numpy__", "numpy_": "numpy_", "x": "x"}


def test_formula_comments_cannot_inject_code(make_spec):
    spec = make_spec(targets=("loss", "other"))
    formula = 'A/N**alpha + E  # """; import os; INJECTED = 1\n# \'\'\'\nB*D'
    law = parse_law(formula, spec)
    assert "INJECTED" in law.text  # the parser keeps comments in the text
    for source in (to_python(law, spec), to_python(law, spec, params={"A": 1, "alpha": 1, "E": 1, "B": 1}),
                   to_sympy(law, spec)):
        ast.parse(source)
        namespace = run_source(source)
        assert "INJECTED" not in namespace and "os" not in namespace


def test_non_finite_fitted_values_print_as_valid_python(make_spec):
    spec = make_spec()
    law = parse_law("A*N + B", spec)
    source = to_python(law, spec, fitted={"g": {"A": math.nan, "B": math.inf}})
    assert math.isnan(run_source(source)["FITTED_PARAMS"]["g"]["A"])
    assert run_source(to_python(law, spec, params={"A": 1.0, "B": -math.inf}))["law"](1.0, 5.0) == -math.inf


# -- JSON and whole entries ----------------------------------------------------------------
@pytest.fixture
def archive_with_law(tmp_path, make_spec):
    spec = make_spec()
    path = tmp_path / "a.sqlite"
    with Archive(path) as archive:
        campaign = archive.create_campaign("synthetic", {}, 0, spec=spec)
        parent = archive.record(campaign, stored("A*N + E", {"g": {"A": 1.0, "E": 2.0}}, spec))
        law_id = archive.record(campaign, stored(
            "A/N**alpha + E", {"g": {"A": 400.0, "alpha": 0.3, "E": 1.7}, "h": {"A": 1.0, "alpha": math.nan, "E": 0.0}},
            spec, parent_ids=(parent,), generation=3, island=2, rationale="power law with offset"))
        rejected = archive.record(campaign, stored("A*N", {}, spec, key=None, status="rejected",
                                                   reason="formula does not parse", score=None))
    return path, spec, law_id, rejected


def test_json_export_is_strict_and_complete(archive_with_law):
    path, spec, law_id, _ = archive_with_law
    with Archive(path, create=False) as archive:
        entry = archive.entry(law_id)
    document = json.loads(to_json(entry, spec), parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
    assert document["formula"] == "A/N**alpha + E"
    assert [f["symbol"] for f in document["features"]] == ["N", "D"]
    assert [t["column"] for t in document["targets"]] == ["loss"]
    assert document["params"]["g"] == {"A": 400.0, "alpha": 0.3, "E": 1.7}
    assert document["params"]["h"]["alpha"] == "NaN"
    assert document["metrics"] == {"train": {"nmse": 0.01}, "validation": {"nmse": 0.02}, "score": 0.02}
    assert document["lineage"]["parent_ids"] == [law_id - 1] and document["lineage"]["island"] == 2
    assert list(json.loads(export_entry(entry, spec, "json", group="g"))["params"]) == ["g"]


def test_export_entry_every_format(archive_with_law):
    path, spec, law_id, _ = archive_with_law
    with Archive(path, create=False) as archive:
        entry = archive.entry(law_id)
    assert r"\alpha" in export_entry(entry, spec, "latex")
    assert "400" in export_entry(entry, spec, "latex", group="g")
    assert "sympy.Symbol('alpha', real=True)" in export_entry(entry, spec, "sympy")
    function = run_source(export_entry(entry, spec, "python", group="g"))["law"]
    assert function(1e6, 1.0) == pytest.approx(400.0 / 1e6**0.3 + 1.7, rel=1e-14)


def test_export_errors_name_the_fix(archive_with_law):
    path, spec, law_id, rejected = archive_with_law
    with Archive(path, create=False) as archive:
        entry, bad = archive.entry(law_id), archive.entry(rejected)
    with pytest.raises(ArchiveError, match="groups: g, h"):
        export_entry(entry, spec, "python", group="nope")
    with pytest.raises(ArchiveError, match="rejected .*only JSON"):
        export_entry(bad, spec, "latex")
    assert json.loads(export_entry(bad, spec, "json"))["status"] == "rejected"
    with pytest.raises(ArchiveError, match="unknown export format"):
        export_entry(entry, spec, "mathml")
    with pytest.raises(FormulaError, match="no value for parameter"):
        to_python(parse_law("A*N", spec), spec, params={})


def test_spec_for_campaign_prefers_file_then_stored_then_curated(tmp_path, make_spec):
    with Archive(tmp_path / "a.sqlite") as archive:
        stored_spec = archive.create_campaign("synthetic", {}, 0, spec=make_spec(symbols=("P",)))
        curated = archive.create_campaign("vocab_scaling_law", {}, 0)
        unknown = archive.create_campaign("my_task", {}, 0)
        assert spec_for_campaign(archive, stored_spec).symbols == ("P",)
        assert spec_for_campaign(archive, curated) == load_task("vocab_scaling_law").spec
        with pytest.raises(ArchiveError, match="--task-file"):
            spec_for_campaign(archive, unknown)
        toml = load_task("vocab_scaling_law").data_path.parent / "task.toml"
        assert spec_for_campaign(archive, unknown, str(toml)).name == "vocab_scaling_law"


def test_cli_export(archive_with_law, capsys):
    path, _, law_id, _ = archive_with_law
    with mock.patch.object(cli, "COMMAND_MODULES", ("sld.discovery.cli.commands.archive_cmd",)):
        assert cli.main(["archive", "export", str(law_id), "--format", "python", "--group", "g",
                         "--archive", str(path)]) == 0
        function = run_source(capsys.readouterr().out)["law"]
        assert function(1e6, 1.0) == pytest.approx(400.0 / 1e6**0.3 + 1.7, rel=1e-14)
        assert cli.main(["archive", "export", "999", "--format", "json", "--archive", str(path)]) == 2
        assert capsys.readouterr().err.startswith("sld: error: no law 999")


def test_entry_dataclass_fields_survive_export(archive_with_law):
    path, spec, law_id, _ = archive_with_law
    with Archive(path, create=False) as archive:
        entry = archive.entry(law_id)
    document = json.loads(to_json(entry, spec))
    names = {f.name for f in dataclasses.fields(NewEntry)} - {"parent_ids", "proposer", "operator",
                                                             "generation", "island", "rationale",
                                                             "train", "validation", "score", "llm_call_id"}
    assert names <= set(document)


def test_a_parsed_law_renders_itself_as_the_functions_do(make_spec):
    spec = make_spec()
    law = parse_law("E + A/N**alpha", spec)
    values = {"A": 2.0, "E": 0.5, "alpha": 0.3}
    assert law.to_latex(values) == to_latex(law, spec, values)
    assert law.to_sympy() == to_sympy(law, spec)
    assert law.to_python(values, group="g") == to_python(law, spec, params=values, group="g")
    namespace = run_source(law.to_python(values))
    tokens = np.array([1.0, 2.0])  # D: in the spec, not in the law
    assert namespace["law"](np.array([10.0, 100.0]), tokens) == pytest.approx(0.5 + 2.0 / np.array([10.0, 100.0]) ** 0.3)


def test_a_law_built_without_its_spec_says_how_to_get_one(make_spec):
    law = dataclasses.replace(parse_law("E + A/N", make_spec()), spec=None)
    with pytest.raises(FormulaError, match="parse_law"):
        law.to_latex()
