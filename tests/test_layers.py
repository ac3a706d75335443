"""The shape of course_lib: layers without cycles, one command line, short functions.

Every import is counted, also those inside functions (a deferred import still ties two modules).
"""

import ast
from pathlib import Path

import course_lib

PACKAGE = Path(course_lib.__file__).resolve().parent


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
           for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """The course_lib modules ``path`` imports (relative imports resolved)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names}
            found |= subs
            if not subs <= MODULES:  # names from the module itself, not submodules of a package
                found.add(base)
    return {m for m in found if m in MODULES and m != _module(path) and m != "course_lib"}


GRAPH = {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_module_imports_one_that_imports_it_back():
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in GRAPH[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(m for m in GRAPH if m in reach(m))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_the_core_does_not_depend_on_the_machinery():
    machinery = {"course_lib.reproduce", "course_lib.__main__", "course_lib.scale", "course_lib.demo",
                 "course_lib.pretrain"}
    for core in ("course_lib.objectives", "course_lib.rollout", "course_lib.evaluate", "course_lib.trainer",
                 "course_lib.models"):
        assert not GRAPH[core] & machinery, (core, GRAPH[core] & machinery)
    assert GRAPH["course_lib.evaluate"] == {"course_lib.rollout"}
    assert GRAPH["course_lib.objectives"] == set()


def test_command_line_parsing_lives_in_main_only():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__main__.py":
            assert "argparse" not in path.read_text(), path.name
            assert 'if __name__ == "__main__"' not in path.read_text(), path.name


def test_no_function_is_longer_than_80_lines():
    long = [(p.name, f.name, f.end_lineno - f.lineno + 1) for p in PACKAGE.rglob("*.py")
            for f in ast.walk(ast.parse(p.read_text())) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            and f.end_lineno - f.lineno + 1 > 80]
    assert not long, long
