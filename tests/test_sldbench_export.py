"""SLDBench and Harbor programs: scored by SLDBench's own procedure, they give ``sld eval``'s test R².

Each curated task's best human law (and every human law without free
parameters: the published Chinchilla and data-constrained constants), and a
small campaign's chosen law, are exported; ``tests/sldbench_driver.py`` (a
re-implementation of SLDBench's evaluator that imports nothing of sld) runs
each program in a subprocess on the curated CSVs.  Every law is fitted once,
by a module-scoped fixture.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import sld
from sld.discovery.cli import main
from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import Law, parse_law
from sld.evaluators.metrics import score
from sld.evaluators import sldbench_runtime as runtime
from sld.evaluators.sldbench import ProgramError, harbor_program, sldbench_program
from sld.tasks import HumanLaw, Rows, Task, curated_names, load_task, typical_mask

TESTS = Path(__file__).resolve().parent
CURATED = TESTS.parent / "tasks" / "curated"
DRIVER = TESTS / "sldbench_driver.py"


@dataclass(frozen=True)
class Export:
    """One law fitted on a curated task, sld's test R², and its two exported programs."""

    task: Task
    law: Law
    fitter: LawFitter
    r2: float
    program: Path
    harbor: Path


def drive(program: Path, task: str, *extra: str) -> dict:
    """SLDBench's procedure on ``program`` in a fresh interpreter: its metrics and the fitted params."""
    done = subprocess.run([sys.executable, str(DRIVER), str(program), str(CURATED / task), *extra],
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export(task: Task, formula: str, options: FitOptions, folder: Path, stem: str) -> Export:
    law = parse_law(formula, task.spec)
    fitter = LawFitter(law, options).fit(task.train)  # what evaluate_on_test (sld eval) does
    r2 = score(task.test.y, fitter.predict(task.test)).r2
    program, harbor = folder / f"{stem}.py", folder / f"{stem}_law.py"
    program.write_text(sldbench_program(law, task.spec, fitter.params_, task.train, options))
    harbor.write_text(harbor_program(law, task.spec, fitter.params_))
    return Export(task, law, fitter, r2, program, harbor)


def cheap_options(human: HumanLaw) -> FitOptions:
    """The human law's own loss and space, with one multi-start: what is exported matters here, not its effort."""
    return FitOptions(space=human.space, loss=human.loss, n_seeds=1)


@pytest.fixture(scope="module")
def human_exports(tmp_path_factory) -> dict[str, list[Export]]:
    """Per curated task: its best human law by test R², then every human law with no free parameters."""
    folder = tmp_path_factory.mktemp("programs")
    exports: dict[str, list[Export]] = {}
    for name in curated_names():
        task = load_task(name)
        fitted = [(human, export(task, human.formula, cheap_options(human), folder, f"{name}_{i}"))
                  for i, human in enumerate(task.spec.human_laws)]
        eligible = [case for human, case in fitted if not human.fitted_on_test_rows]
        best = max(eligible, key=lambda case: case.r2)
        exports[name] = [best] + [case for _, case in fitted if not case.law.n_params and case is not best]
    return exports


@pytest.mark.parametrize("task", curated_names())
def test_sldbench_scores_each_curated_human_law_as_sld_eval_does(task, human_exports):
    for case in human_exports[task]:
        result = drive(case.program, task)
        assert not result["failed"], result["error"]
        assert result["r2"] == pytest.approx(case.r2, abs=1e-6), case.law.text
        # exactly the law's free parameters come back (one placeholder for a law without any)
        assert {len(p) for p in result["params"].values()} == {max(case.law.n_params, 1)}


def test_the_zero_parameter_and_the_five_target_laws_are_covered(human_exports):
    data_constrained = [e.law for e in human_exports["data_constrained_scaling_law"]]
    assert any(law.n_params == 0 for law in data_constrained)
    mixture = human_exports["domain_mixture_scaling_law"][0]
    assert len(mixture.law.outputs) == 5 and mixture.law.n_params == 35


def test_int64_features_and_shuffled_runs_are_recognised(human_exports):
    from sldbench_driver import load_split  # tests/ is on sys.path under pytest

    X, _ = next(iter(load_split(CURATED / "parallel_scaling_law", "train").values()))
    assert X.dtype == np.int64  # as SLDBench hands integer columns
    for task in ("parallel_scaling_law", "sft_scaling_law"):
        case = human_exports[task][0]
        assert drive(case.program, task, "--shuffle", "7")["r2"] == pytest.approx(case.r2, abs=1e-6)


def test_a_group_sld_fitted_gets_sld_values_exactly(human_exports):
    """No polish on a recognised group: SLDBench scores the very law sld reported, on any machine."""
    for task in ("sft_scaling_law", "lr_bsz_scaling_law"):
        case = human_exports[task][0]
        module = load_module(case.program, f"{task}_program")
        for group, rows in case.task.train.by_group().items():
            stored = np.array([case.fitter.params_[group][p] for p in case.law.param_names])
            assert np.array_equal(module.fit_scaling_law(rows.X, rows.y[:, 0]), stored)


def test_runs_never_seen_are_fitted_from_the_stored_values(human_exports):
    case = human_exports["parallel_scaling_law"][0]
    module = load_module(case.program, "parallel_program")
    rows = case.task.train.by_group()["stack"]
    shifted = rows.y[:, 0] * 1.03  # another corpus, say: no fingerprint matches
    assert runtime.fingerprint(rows.X, shifted[:, None]) not in module.FITTED
    theta = module.fit_scaling_law(rows.X, shifted)
    assert theta.shape == (case.law.n_params,)
    costs = [module.cost(module.scaling_law_func, rows.X, shifted[:, None], np.asarray(t), "linear", None)
             for t in (theta, *module.FITTED.values())]
    assert costs[0] < min(costs[1:])


def test_the_program_is_readable_and_needs_no_sld(human_exports):
    case = human_exports["domain_mixture_scaling_law"][0]
    source = case.program.read_text()
    tree = ast.parse(source)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"hashlib", "numpy", "scipy"}
    docstring = ast.get_docstring(tree)
    assert "y[:, 4] = c5 + k5*exp(r1*t51" in docstring and "Free parameters: c1, c2" in docstring
    module = load_module(case.program, "mixture_program")
    assert module.PARAM_NAMES == case.law.param_names and module.TARGET_COLUMNS[4] == "loss_domain_5"
    assert "(c1, c2, c3, c4, c5, k1" in source  # parameters unpacked by name


def test_the_fence_restates_sld_s_outlier_fence():
    task = load_task("lr_bsz_scaling_law")
    bounds = runtime.fence_bounds(task.train.y, 8.0)
    ours = typical_mask(task.train.y, 8.0)
    assert np.array_equal(runtime.inside(task.train.y, bounds), ours) and not ours.all()


@pytest.mark.parametrize("task", ["data_constrained_scaling_law", "domain_mixture_scaling_law",
                                  "moe_scaling_law", "sft_scaling_law"])
def test_harbor_law_reproduces_sld_s_predictions(task, human_exports):
    for case in human_exports[task]:
        module = load_module(case.harbor, f"{task}_harbor")
        test = case.task.test
        columns = case.task.spec.feature_columns
        for group in test.group_names:
            rows = test.select(test.groups == group)
            inputs = [dict(zip(columns, map(float, x))) for x in rows.X]
            predicted = module.law(inputs, group)
            assert [set(p) for p in predicted] == [set(case.task.spec.target_columns)] * len(rows)
            values = np.array([[p[t] for t in case.task.spec.target_columns] for p in predicted])
            np.testing.assert_allclose(values, case.fitter.predict(rows), rtol=1e-9, atol=0)


def test_harbor_law_names_the_groups_it_knows(human_exports):
    module = load_module(human_exports["parallel_scaling_law"][0].harbor, "parallel_harbor")
    with pytest.raises(ValueError, match=r"unknown group 'nope'; this law was fitted for: 'stack', 'pile'"):
        module.law([{"num_params": 1e9, "parallel_size": 2}], "nope")


# -- the command line --------------------------------------------------------------------------
def test_sld_eval_export_gives_its_own_test_r2(tmp_path, capsys):
    formula = "exp(a*log(N) + b*log(E) + c*log(N)*log(E) + d)"  # fitted on log residuals
    program = tmp_path / "moe.py"
    assert main(["eval", "moe_scaling_law", formula, "--space", "log", "--json", "--export", "sldbench",
                 "--output", str(program)]) == 0
    reported = json.loads(capsys.readouterr().out)["test"]["r2"]
    assert "'space': 'log'" in program.read_text()
    assert drive(program, "moe_scaling_law")["r2"] == pytest.approx(reported, abs=1e-6)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A small seeded campaign on lr_bsz (whose diverged runs the campaign's outlier fence leaves out)."""
    path = tmp_path_factory.mktemp("campaign") / "runs.sqlite"
    # one finalist and no ensemble: the export is tested, not the choice or the ensemble, whose
    # full-effort refits on 1,911 runs took most of the fixture's 14 s
    settings = sld.CampaignSettings(budget=12, workers=0, finalists=1, ensemble_size=0)
    result = sld.discover(load_task("lr_bsz_scaling_law"), settings, archive=path, compare_with_human=False)
    return path, result


def test_a_campaign_s_chosen_law_exports_with_its_final_parameters(campaign, tmp_path):
    path, result = campaign
    program = tmp_path / "chosen.py"
    assert main(["archive", "export", str(result.law_id), "--format", "sldbench", "--archive", str(path),
                 "--output", str(program)]) == 0
    text = program.read_text()
    assert "'fence': 8.0" in text
    assert "'huber_delta': 0.001" in text  # the campaign's 'auto' loss: Huber, as diverged runs are fenced out
    driven = drive(program, "lr_bsz_scaling_law")
    assert driven["r2"] == pytest.approx(result.test["r2"], abs=1e-6)
    # the campaign's final refit, not the search fit
    names = parse_law(result.formula, load_task("lr_bsz_scaling_law").spec).param_names
    assert driven["params"]["all_data"] == pytest.approx([result.params["all_data"][p] for p in names], rel=1e-9)


def test_archive_export_harbor_goes_to_standard_output(campaign, capsys):
    path, result = campaign
    assert main(["archive", "export", str(result.law_id), "--format", "harbor", "--archive", str(path)]) == 0
    namespace: dict = {}
    exec(compile(capsys.readouterr().out, "<law.py>", "exec"), namespace)  # noqa: S102 - the check
    row = {"lr": 1e-3, "bsz": 512.0, "data_size": 1e11, "non_embedding_param_size": 1e9}
    assert np.isfinite(namespace["law"]([row], "all_data")[0]["lm_loss"])


@pytest.mark.parametrize("argv, message", [
    (["eval", "parallel_scaling_law", "E + A/N**a", "--export", "sldbench"], "add --output FILE"),
    (["eval", "parallel_scaling_law", "E + A/N**a", "--output", "x.py"], "add --export sldbench"),
    (["eval", "parallel_scaling_law", "E + A/N**a", "--export", "onnx", "--output", "x.py"],
     "unknown program format 'onnx'; use one of sldbench, harbor"),
    (["eval", "parallel_scaling_law", "E + A/N**a", "--export", "harbor", "--output", "/no/such/dir/law.py"],
     "--output /no/such/dir/law.py: the folder /no/such/dir does not exist"),
])
def test_bad_export_requests_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_archive_export_of_a_program_refuses_a_group(campaign, capsys):
    path, result = campaign
    assert main(["archive", "export", str(result.law_id), "--format", "sldbench", "--group", "all_data",
                 "--archive", str(path)]) == 2
    assert "carries every group's values; drop --group" in capsys.readouterr().err


# -- generated code is printed from the tree --------------------------------------------------
def test_hostile_names_and_comments_never_reach_the_code(make_spec, tmp_path):
    spec = make_spec(symbols=("N", "D"))
    formula = 'numpy + X/N**params + fit_group*D  # """ import os'
    law = parse_law(formula, spec)
    grid = np.array([[n, d] for n in (1.0, 2.0, 4.0, 8.0) for d in (1.0, 3.0, 9.0)])
    y = 1.5 + 2.0 / grid[:, 0] ** 0.7 + 0.1 * grid[:, 1]
    rows = Rows(grid, y[:, None], np.array(["g"] * len(grid)))
    fitter = LawFitter(law).fit(rows)
    program = tmp_path / "hostile.py"
    program.write_text(sldbench_program(law, spec, fitter.params_, rows, FitOptions()))
    tree = ast.parse(program.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import) and n.names[0].name == "os"]
    module = load_module(program, "hostile")
    theta = module.fit_scaling_law(grid, y)
    np.testing.assert_allclose(module.scaling_law_func(grid, theta), fitter.predict(rows)[:, 0], rtol=1e-9)


def test_a_law_not_fitted_for_every_group_is_refused(make_spec):
    spec = make_spec(symbols=("N",))
    law = parse_law("a*N", spec)
    rows = Rows(np.array([[1.0], [2.0]]), np.array([[1.0], [2.0]]), np.array(["g", "h"]))
    with pytest.raises(ProgramError, match="not fitted for 'h'"):
        sldbench_program(law, spec, {"g": {"a": 1.0}}, rows, FitOptions())
