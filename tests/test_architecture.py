"""The shape of the code: the stages stand in one order and import downwards only (so no package
imports another in a cycle), no module import cycles, short functions, and each modality's name stays
in its own folder."""

import ast
from pathlib import Path

import pytest

from cmcd.modalities import MODALITIES

PACKAGE = Path(__file__).resolve().parent.parent / "cmcd"
# The stages, lowest first: a module may import its own stage and the stages below it, never above.
STAGE_ORDER = (("cmcd.paths", "cmcd.runtime"), ("cmcd.data",), ("cmcd.modalities",), ("cmcd.models",),
               ("cmcd.eval",), ("cmcd.train",), ("cmcd.viz",), ("cmcd.app",), ("cmcd.bench",),
               ("cmcd.cli", "cmcd.cli_segmentation", "cmcd.__main__"))
LOWER_STAGES = ("cmcd.data", "cmcd.modalities", "cmcd.models", "cmcd.eval", "cmcd.train")
UPPER_STAGES = ("cmcd.viz", "cmcd.bench", "cmcd.app")
MAX_FUNCTION_LINES = 60
# Where a modality's name may appear besides its own folder: its registration line and the app's
# documented tools.
NAMING_ALLOWED = {"modalities/__init__.py", "app/tools.py"}  # the registration; the MCP tools


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _typing_only(tree: ast.AST) -> set[ast.AST]:
    """The statements under `if TYPE_CHECKING:`, which never run."""
    return {statement for node in ast.walk(tree) if isinstance(node, ast.If)
            and getattr(node.test, "id", None) == "TYPE_CHECKING"
            for block in node.body for statement in ast.walk(block)}


def _imports(module: str) -> set[str]:
    """Every cmcd module `module` imports when it runs, at the top or inside functions."""
    found = set()
    tree = ast.parse(MODULES[module].read_text())
    for node in set(ast.walk(tree)) - _typing_only(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("cmcd")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cmcd"):
            for alias in node.names:  # `from cmcd.x import y` imports the module cmcd.x.y if it is one
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return {name for name in found if name in MODULES}


def _stage(module: str, stages) -> str | None:
    return next((s for s in stages if module == s or module.startswith(s + ".")), None)


def _floor(module: str) -> int:
    return next(floor for floor, stages in enumerate(STAGE_ORDER) if _stage(module, stages))


def test_every_module_belongs_to_one_stage():
    assert all(_stage(module, sum(STAGE_ORDER, ())) for module in MODULES if module != "cmcd")


def _package_graph() -> dict[str, set[str]]:
    graph = {}
    for module in MODULES:
        if module != "cmcd":
            package = _stage(module, sum(STAGE_ORDER, ()))
            graph.setdefault(package, set()).update(
                _stage(target, sum(STAGE_ORDER, ())) for target in _imports(module) if target != "cmcd")
    return {package: targets - {package} for package, targets in graph.items()}


def test_stages_import_only_their_own_and_lower_stages():
    offences = [f"{module} imports {target}" for module in MODULES if module != "cmcd"
                for target in _imports(module) if target != "cmcd" and _floor(target) > _floor(module)]
    assert not offences, offences


def test_no_package_level_import_cycles():
    graph = _package_graph()
    cycles = [cycle for package in graph if (cycle := _cycle_from(package, graph))]
    assert not cycles, cycles[0]


def test_lower_stages_import_nothing_from_viz_bench_or_app():
    offences = [f"{module} imports {target}" for module in MODULES if _stage(module, LOWER_STAGES)
                for target in _imports(module) if _stage(target, UPPER_STAGES)]
    assert not offences, offences


def test_the_app_reads_benchmarks_through_the_results_reader_not_bench():
    offences = [f"{module} imports {target}" for module in MODULES if _stage(module, ("cmcd.app",))
                for target in _imports(module) if _stage(target, ("cmcd.bench",))]
    assert not offences, offences


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for target in graph[node]:
            if target == start:
                return path + [start]
            if target not in seen:
                seen.add(target)
                stack.append((target, path + [target]))
    return None


def test_no_import_cycles():
    graph = {module: _imports(module) - {module} for module in MODULES}
    cycles = [cycle for module in MODULES if (cycle := _cycle_from(module, graph))]
    assert not cycles, cycles[0]


def test_no_function_is_longer_than_60_lines():
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert not long, long


def _names_literal(path: Path, literal: str) -> bool:
    return any(isinstance(node, ast.Constant) and node.value == literal
               for node in ast.walk(ast.parse(path.read_text())))


@pytest.mark.parametrize("name", list(MODALITIES))
def test_a_modalitys_name_appears_only_in_its_folder_its_registration_and_the_apps_tools(name):
    own_folder = f"modalities/{name}/"
    naming = [relative for path in MODULES.values()
              if not (relative := path.relative_to(PACKAGE).as_posix()).startswith(own_folder)
              and relative not in NAMING_ALLOWED and _names_literal(path, name)]
    assert not naming, naming


def test_each_modality_lives_in_its_own_folder():
    for name, modality in MODALITIES.items():
        assert modality.render.__module__.startswith(f"cmcd.modalities.{name}"), name
        assert (PACKAGE / "modalities" / name / "__init__.py").is_file(), name
