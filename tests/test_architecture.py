"""The layers import downwards only: ``discovery → archive → evaluators → tasks``.

Every module of the four layer folders is read with ``ast`` (nothing is imported), and
every import in it is checked: at module level, inside functions, under
``TYPE_CHECKING``, relative ones, ``from sld import Name`` through the facade, and
``importlib.import_module("sld....")`` with a literal name. A module may import its
own layer and the layers below it, never a higher one (see docs/architecture.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent  # the repository root is the ``sld`` package
LAYERS = ("tasks", "evaluators", "archive", "discovery")  # lowest first
RANK = {layer: rank for rank, layer in enumerate(LAYERS)}

# (module file relative to the root, imported module) pairs that break the rule today
# and are tolerated until fixed; each names its violation. Empty: the code obeys it.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def _facade_exports() -> dict[str, str]:
    """``sld``'s public names and the module each comes from (read from ``__init__.py``)."""
    tree = ast.parse((ROOT / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in targets):
            return ast.literal_eval(node.value)
    raise AssertionError("sld/__init__.py has no _EXPORTS table")


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("sld",) + parts)


def _imported_modules(path: Path, exports: dict[str, str], root: Path = ROOT) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path``, wherever it sits."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "sld":  # through the facade: the module that defines each name
                # (a name the facade does not re-export, such as ``__version__``, is its own)
                found += [(node.lineno, exports[alias.name]) for alias in node.names if alias.name in exports]
            elif node.module is None:  # ``from . import x``: x may be a submodule
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "import_module" and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "sld" and len(parts) > 1 and parts[1] in RANK:
        return parts[1]
    return None


def _modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py"))


def test_every_layer_folder_has_modules():
    for layer in LAYERS:
        assert (ROOT / layer / "__init__.py").is_file(), layer
    assert len(_modules()) > 40


def _violations(layer: str, exports: dict[str, str], root: Path = ROOT) -> list[str]:
    """Every import in ``layer``'s modules of a higher layer, less the known exceptions."""
    violations = []
    for path in sorted((root / layer).rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        for line, module in _imported_modules(path, exports, root):
            if module == "sld":  # ``import sld`` reaches every layer through the facade
                violations.append(f"{relative}:{line} imports the sld facade (name the module instead)")
                continue
            target = _layer_of(module)
            if target is not None and RANK[target] > RANK[layer] and (relative, module) not in KNOWN_VIOLATIONS:
                violations.append(f"{relative}:{line} imports {module} ({target} is above {layer})")
    return violations


@pytest.mark.parametrize("layer", LAYERS)
def test_no_module_imports_from_a_higher_layer(layer):
    violations = _violations(layer, _facade_exports())
    assert not violations, "layers import downwards only (discovery → archive → evaluators → tasks):\n" + \
        "\n".join(violations)


def test_known_violations_are_still_real():
    """An exception listed above that no longer occurs must be removed from the list."""
    exports = _facade_exports()
    present = {(p.relative_to(ROOT).as_posix(), m) for p in _modules() for _, m in _imported_modules(p, exports)}
    assert KNOWN_VIOLATIONS <= present, sorted(KNOWN_VIOLATIONS - present)


def test_the_checker_sees_imports_inside_functions_and_under_type_checking(tmp_path):
    sample = tmp_path / "tasks" / "sample.py"
    sample.parent.mkdir()
    sample.write_text(
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from sld.archive import Archive\n"
        "def f():\n"
        "    import sld.discovery.search.campaign\n"
        "    from ..evaluators import formula\n"
        "    from . import rows\n"
        "    from sld import Campaign\n"
        "    importlib.import_module('sld.archive.store')\n",
        encoding="utf-8")
    found = sorted(m for _, m in _imported_modules(sample, {"Campaign": "sld.discovery.search.campaign"}, tmp_path))
    assert found == sorted(["importlib", "typing", "sld.archive", "sld.discovery.search.campaign", "sld.evaluators",
                            "sld.tasks.rows", "sld.discovery.search.campaign", "sld.archive.store"])
    higher = {_layer_of(m) for m in found} - {None, "tasks"}
    assert higher == {"archive", "discovery", "evaluators"}


def test_the_checker_flags_an_upward_import_and_allows_a_downward_one(tmp_path):
    (tmp_path / "evaluators").mkdir()
    (tmp_path / "evaluators" / "up.py").write_text(
        "from sld.tasks import Rows\n"
        "def f():\n"
        "    from sld.archive.store import Archive\n", encoding="utf-8")
    assert _violations("evaluators", {}, tmp_path) == [
        "evaluators/up.py:3 imports sld.archive.store (archive is above evaluators)"]
