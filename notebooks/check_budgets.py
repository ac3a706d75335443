"""Measure the learner budgets of notebooks from their stored outputs and print the violations.

    python notebooks/check_budgets.py notebooks/0[0-3]_*.ipynb     # exit 1 if any budget is broken
    python notebooks/check_budgets.py --all notebooks/*.ipynb       # print the measures of every notebook

Budgets (issue "a course, not an audit"), per notebook:
- every code cell at most 30 lines (the one cell that writes the on-policy loop out, 60);
- printed output at most 15 lines per cell (streams and plain-text results; a figure or a widget
  counts as no text) and every printed or code line under 160 characters;
- a learner-time estimate at the top (``**Time:** about N minutes`` in the first cell);
- a "## What you learned" cell before the exercises, followed by a code cell that prints three to
  five sentences (so the numbers in them are computed).

Cells are named ``NN cK``: notebook NN, cell K counted from 0 as in the .ipynb file. Outputs are
measured as stored, so re-execute a notebook before trusting its output numbers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

MAX_CODE_LINES = 30
MAX_LOOP_CELL_LINES = 60
LOOP_CELL = "def on_policy_loop("  # notebook 04's loop written out, the one cell allowed 60 lines
MAX_OUTPUT_LINES = 15
MAX_LINE_CHARS = 159  # "under 160 characters"
TIME = re.compile(r"\*\*Time:\*\*\s*about \d+ minutes")
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else x


def printed(cell: dict) -> list[str]:
    """The lines a cell printed: streams, plain-text results and tracebacks (not figures or widgets)."""
    lines = []
    for out in cell.get("outputs", []):
        kind = out["output_type"]
        if kind == "stream":
            lines += _text(out["text"]).splitlines()
        elif kind in ("execute_result", "display_data") and set(out.get("data", {})) == {"text/plain"}:
            lines += _text(out["data"]["text/plain"]).splitlines()
        elif kind == "error":
            lines += out.get("traceback", [])
    return lines


def measure(path: Path) -> dict:
    """The notebook's measures and its violations, each a one-line string naming the cell."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    tag, cells = path.name[:2], nb["cells"]
    found = {"violations": [], "longest_code": (0, "-"), "longest_output": (0, "-"), "widest": (0, "-")}
    bad = found["violations"].append
    for k, cell in enumerate(cells):
        name = f"{tag} c{k}"
        if cell["cell_type"] != "code":
            continue
        source = _text(cell["source"]).splitlines()
        limit = MAX_LOOP_CELL_LINES if LOOP_CELL in _text(cell["source"]) else MAX_CODE_LINES
        if len(source) > limit:
            bad(f"{name}: {len(source)} code lines (budget {limit})")
        out = printed(cell)
        if len(out) > MAX_OUTPUT_LINES:
            bad(f"{name}: prints {len(out)} lines (budget {MAX_OUTPUT_LINES})")
        for where, lines in (("code", source), ("output", out)):
            wide = max((len(line) for line in lines), default=0)
            if wide > MAX_LINE_CHARS:
                bad(f"{name}: a {where} line of {wide} characters (budget {MAX_LINE_CHARS})")
            found["widest"] = max(found["widest"], (wide, name))
        found["longest_code"] = max(found["longest_code"], (len(source), name))
        found["longest_output"] = max(found["longest_output"], (len(out), name))
    if not cells or not TIME.search(_text(cells[0]["source"])):
        bad(f"{tag} c0: no learner-time estimate ('**Time:** about N minutes') in the first cell")
    heads = [k for k, c in enumerate(cells) if c["cell_type"] == "markdown"
             and re.search(r"^## What you learned", _text(c["source"]), re.M)]
    exercises = [k for k, c in enumerate(cells) if c["cell_type"] == "markdown"
                 and re.search(r"^## Exercises", _text(c["source"]), re.M)]
    if not heads:
        bad(f"{tag}: no '## What you learned' cell")
    else:
        k = heads[0]
        if exercises and k > exercises[0]:
            bad(f"{tag} c{k}: 'What you learned' comes after the exercises (c{exercises[0]})")
        nxt = cells[k + 1] if k + 1 < len(cells) else None
        if nxt is None or nxt["cell_type"] != "code":
            bad(f"{tag} c{k}: 'What you learned' is not followed by a code cell that prints it")
        else:
            n = len(SENTENCE_END.findall("\n".join(printed(nxt))))
            if not 3 <= n <= 5:
                bad(f"{tag} c{k + 1}: 'What you learned' prints {n} sentences (three to five)")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help=".ipynb files")
    parser.add_argument("--all", action="store_true", help="also print each notebook's longest cells")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        print(f"check_budgets: not a notebook file: {', '.join(missing)}; pass paths like notebooks/01_*.ipynb",
              file=sys.stderr)
        return 2
    broken = 0
    for path in args.notebooks:
        m = measure(path)
        broken += len(m["violations"])
        (code_n, code_at), (out_n, out_at), (wide, wide_at) = m["longest_code"], m["longest_output"], m["widest"]
        if args.all or m["violations"]:
            print(f"{path.name}: longest code cell {code_n} lines ({code_at}), longest output {out_n} lines "
                  f"({out_at}), widest line {wide} characters ({wide_at}); {len(m['violations'])} violations")
        for v in m["violations"]:
            print("  " + v)
    print(f"{len(args.notebooks)} notebooks, {broken} budget violations")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
