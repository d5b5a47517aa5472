"""The shape of the code: stages import downwards only, no import cycles, short functions, and
modality-specific names stay in their modality's own files."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cmcd"
LOWER_STAGES = ("cmcd.data", "cmcd.models", "cmcd.train", "cmcd.eval", "cmcd.modalities")
UPPER_STAGES = ("cmcd.viz", "cmcd.bench", "cmcd.app")
MAX_FUNCTION_LINES = 60
# The audio modality's own files: its record, its renderer and its voices.
AUDIO_FILES = {"modalities/audio.py", "data/renderers/audio.py", "data/renderers/speech.py"}


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


@pytest.mark.parametrize("literal, own_files", [("audio", AUDIO_FILES)])
def test_at_most_one_file_outside_a_modalitys_own_names_it(literal, own_files):
    naming = [str(path.relative_to(PACKAGE)) for path in MODULES.values()
              if str(path.relative_to(PACKAGE)) not in own_files and _names_literal(path, literal)]
    assert len(naming) <= 1, naming
