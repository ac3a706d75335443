"""The shape of course_lib: layers without cycles, one command line, and the size budgets.

Every import is counted, also those inside functions (a deferred import still ties two modules).
Code lines are lines holding a token that is not a comment, a docstring or blank: what a reader
must read as code, counted with ast and tokenize.
"""

import ast
import io
import tokenize
from pathlib import Path

import pytest

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
    machinery = {"course_lib.reproduce", "course_lib.__main__", "course_lib.demo", "course_lib.runs",
                 "course_lib.loading"}
    allowed = {"course_lib.trainer": {"course_lib.runs"}, "course_lib.models": {"course_lib.loading"}}
    for core in CORE:
        bad = GRAPH[core] & machinery - allowed.get(core, set())
        assert not bad, (core, bad)
    assert GRAPH["course_lib.evaluate"] == {"course_lib.rollout", "course_lib.models"}
    assert GRAPH["course_lib.objectives"] == set()


def test_command_line_parsing_lives_in_main_only():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__main__.py":
            assert "argparse" not in path.read_text(), path.name
            assert 'if __name__ == "__main__"' not in path.read_text(), path.name


#: the modules a learner reads: at most CORE_BUDGET code lines together
CORE = ("course_lib.objectives", "course_lib.trainer", "course_lib.rollout", "course_lib.evaluate",
        "course_lib.models", "course_lib.tasks")
#: code lines of the whole package (the aim: 3,800) and of the core a learner reads
PACKAGE_BUDGET, CORE_BUDGET = 3_900, 2_000
#: physical lines per module, and lines per function; the verifiers' tables of cases are longer
MODULE_LINES, FUNCTION_LINES, DOCSTRING_LINES = 450, 60, 35
LONGER_MODULES = {"course_lib.tasks.countdown": 500, "course_lib.tasks.gsm8k": 500}
LONGER_FUNCTIONS = {("course_lib.tasks.countdown", "score"): 80, ("course_lib.tasks.gsm8k", "score"): 80}


def code_lines(source: str) -> int:
    """Lines with code on them: no blank line, comment or docstring line counts."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docstrings |= set(range(body[0].lineno, body[0].end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines |= set(range(tok.start[0], tok.end[0] + 1)) - docstrings
    return len(lines)


SOURCES = {_module(p): p.read_text() for p in PACKAGE.rglob("*.py")}
CODE = {m: code_lines(s) for m, s in SOURCES.items()}


@pytest.mark.parametrize("source, expected", [
    ('"""Doc.\n\nMore."""\n\nx = 1  # note\n', 1),
    ('def f():\n    """One line."""\n    # a comment\n\n    return (1,\n            2)\n', 3),
    ('s = """not a docstring:\na value"""\n', 2),
])
def test_code_lines_count_only_code(source, expected):
    assert code_lines(source) == expected


def test_the_package_fits_its_code_line_budget():
    assert sum(CODE.values()) <= PACKAGE_BUDGET, sorted(CODE.items(), key=lambda kv: -kv[1])[:8]


def test_the_core_fits_its_code_line_budget():
    core = {m: CODE[m] for m in CORE}
    assert sum(core.values()) <= CORE_BUDGET, core


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_no_module_is_too_long(module):
    lines = len(SOURCES[module].splitlines())
    assert lines <= LONGER_MODULES.get(module, MODULE_LINES), (module, lines)


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_no_function_is_too_long(module):
    long = [(f.name, f.end_lineno - f.lineno + 1) for f in ast.walk(ast.parse(SOURCES[module]))
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            and f.end_lineno - f.lineno + 1 > LONGER_FUNCTIONS.get((module, f.name), FUNCTION_LINES)]
    assert not long, (module, long)


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_module_docstrings_are_short_and_no_all_lists(module):
    tree = ast.parse(SOURCES[module])
    doc = ast.get_docstring(tree, clean=False) or ""
    assert len(doc.splitlines()) <= DOCSTRING_LINES, (module, len(doc.splitlines()))
    names = [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)]
    assert "__all__" not in names, f"{module} has an __all__ list; the package never uses star imports"
