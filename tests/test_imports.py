"""No import circle: every module imports on its own, and the module-level imports form no cycle."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jrobust"


def module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts))
    return names


def _top_level(nodes):
    """Every node that runs when the module is imported: not inside a function or a lambda
    (they run later), nor in an ``if TYPE_CHECKING:`` block (it never runs)."""
    for node in nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        yield node
        yield from _top_level(ast.iter_child_nodes(node))


def module_imports(name: str) -> set[str]:
    """The jrobust modules ``name`` imports when it is imported (its top level only; imports
    inside functions run later and cannot make a circle at import time)."""
    path = ROOT / Path(*name.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text())
    known = set(module_names())
    found = set()
    for sub in _top_level(tree.body):
        if isinstance(sub, ast.Import):
            found |= {a.name for a in sub.names if a.name in known}
        elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
            if sub.module in known:
                found.add(sub.module)
            found |= {f"{sub.module}.{a.name}" for a in sub.names} & known
    for sub in list(found):  # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = sub.split(".")
        found |= {".".join(parts[:k]) for k in range(1, len(parts))} & known
    found.discard(name)
    return found


def test_module_level_imports_form_no_cycle():
    graph = {name: module_imports(name) for name in module_names()}
    # a package's own __init__ importing its submodules is the package's face, not a circle
    # through the package: drop the edge from a submodule back to its parent packages
    for name, deps in graph.items():
        parents = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        deps -= parents
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append(stack[stack.index(node) :] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            visit(dep)
        stack.pop()

    for name in graph:
        visit(name)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_every_module_imports_on_its_own():
    """Each module imported first, in a process where no other jrobust module is loaded yet."""
    code = f"""
import importlib, sys
failed = []
for name in {module_names()!r}:
    for loaded in [m for m in sys.modules if m == "jrobust" or m.startswith("jrobust.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as err:
        failed.append(f"{{name}}: {{type(err).__name__}}: {{err}}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
