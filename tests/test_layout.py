"""The package is laid out by stage: dependencies point one way, functions stay short, each format has one owner,
the package docstrings list their modules, and ruff finds nothing."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vidstudy"
REPO = PACKAGE.parent
STAGES = ("extraction", "inference", "yt8m", "study")
LEAVES = ("atomic", "executor", "profiling")  # import no project module but errors
MAX_FUNCTION_LINES = 60


def _module_name(path: Path, repo: Path = REPO) -> str:
    parts = path.relative_to(repo).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, known=MODULES, repo: Path = REPO) -> set[str]:
    """Every ``vidstudy`` module that ``path`` imports, at module level or inside a function."""
    name = _module_name(path, repo)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("vidstudy")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("vidstudy"):
                found |= {f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names}
    return {m for m in found if m in known and m != name and m != "vidstudy"}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (strongly connected components of more than one module, or a self-loop)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_circle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "vidstudy"
    pkg.mkdir()
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from .a import y\n")
    (pkg / "c.py").write_text("from . import a\n")
    known = {f"vidstudy.{p.stem}": p for p in pkg.glob("*.py")}
    graph = {m: imports(p, known, tmp_path) for m, p in known.items()}
    assert graph["vidstudy.b"] == {"vidstudy.a"}
    assert cycles(graph) == [["vidstudy.a", "vidstudy.b"]]


def test_no_import_circle_counting_imports_inside_functions():
    graph = {m: imports(p) for m, p in MODULES.items()}
    assert cycles(graph) == []


def test_the_core_imports_no_stage_and_the_leaves_import_nothing_of_the_project():
    core = {m: p for m, p in MODULES.items() if m.count(".") == 1 and m != "vidstudy.cli"}
    offenders = {m: sorted(d for d in imports(p) if d.split(".")[1] in STAGES) for m, p in core.items()}
    assert {m: d for m, d in offenders.items() if d} == {}
    for leaf in LEAVES:
        assert imports(MODULES[f"vidstudy.{leaf}"]) <= {"vidstudy.errors"}, leaf


@pytest.mark.parametrize("stage, other", [("extraction", "study"), ("study", "extraction")])
def test_each_stage_imports_without_the_other(stage, other):
    modules = sorted(p.stem for p in (PACKAGE / stage).glob("*.py") if p.stem != "__init__")
    code = "; ".join(f"import vidstudy.{stage}.{m}" for m in modules)
    code += f"; import sys; print(sorted(k for k in sys.modules if k.startswith('vidstudy.{other}')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"vidstudy.{stage} imports vidstudy.{other}: {out}"


def test_no_module_imports_another_modules_private_names():
    private = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                private += [f"{module}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []


def test_no_function_is_longer_than_the_limit():
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert long == []


def test_every_package_docstring_names_each_of_its_modules():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        modules = sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__")
        modules += sorted(p.name for p in init.parent.iterdir() if (p / "__init__.py").is_file())
        missing = [m for m in modules if f"``{m}``" not in doc]
        assert missing == [], f"{init.relative_to(REPO)} does not list {missing}"


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", "--no-cache", "vidstudy", "tests", "benchmarks"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_checkpoint_layout_is_named_in_one_module():
    naming = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "best.pt" in p.read_text())
    assert naming == ["checkpoint.py"]
