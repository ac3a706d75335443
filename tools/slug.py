"""Point the course at another GitHub repository: ``make slug SLUG=owner/name``.

Rewrites ``REPO_SLUG`` in course_lib/__init__.py and, in every notebooks/*.ipynb, the Colab
badge URLs of the first cell and the clone URL of the install cell (the first code cell); the
rest of each file stays byte for byte. ``--check`` (or no slug) only lists what disagrees.

    python tools/slug.py my-org/rl-course
    python tools/slug.py --check

A tool that rewrites the repository, so it lives outside the package; standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the clone: course_lib/, notebooks/, data/
_OWNER = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9])*")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SLUG_LINE = re.compile(r'^REPO_SLUG = "([^"]*)"$', re.M)
_BADGE = re.compile(r"(https://colab\.research\.google\.com/github/)([^/\s)]+/[^/\s)]+)(/blob/)")
_CLONE = re.compile(r"(https://github\.com/)([^/\s\"']+/[^/\s\"']+)()")


def check_repo_slug(slug: str) -> str:
    """Return ``slug`` if it is a GitHub ``owner/name``, else raise a one-line ValueError.

    GitHub's rules: the owner has 1-39 letters, digits or single hyphens, not at either end;
    the name has 1-100 letters, digits, ``.``, ``-`` or ``_``, and is not ``.``, ``..`` or
    ``*.git``.
    """
    owner, sep, name = str(slug).partition("/")
    if not (sep and len(owner) <= 39 and _OWNER.fullmatch(owner) and len(name) <= 100
            and _NAME.fullmatch(name) and name not in (".", "..") and not name.endswith(".git")):
        raise ValueError(
            f"{slug!r} is not a GitHub repository 'owner/name' (owner: 1-39 letters, digits or "
            "single inner hyphens; name: 1-100 letters, digits, '.', '-' or '_')")
    return slug


def _first_cells(nb: dict, path: Path) -> tuple[dict, dict]:
    """The badge cell (the first cell, markdown) and the install cell (the first code cell)."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if not nb["cells"] or nb["cells"][0]["cell_type"] != "markdown" or not code:
        raise ValueError(f"{path.name}: expected a markdown first cell and an install code cell")
    return nb["cells"][0], code[0]


def repo_slug_mismatches(root: str | Path = ROOT) -> list[str]:
    """One line per place in ``root`` that does not name the REPO_SLUG of its course_lib.

    Checked: every notebook's Colab badges (first cell) and clone URL (first code cell), each
    of which must be present. ``[]`` when they all agree.
    """
    root = Path(root)
    m = _SLUG_LINE.search((root / "course_lib" / "__init__.py").read_text(encoding="utf-8"))
    if not m:
        return ["course_lib/__init__.py: no line REPO_SLUG = \"owner/name\""]
    slug, problems = m.group(1), []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        badge, install = _first_cells(json.loads(path.read_text(encoding="utf-8")), path)
        for what, cell, pattern in (("badge", badge, _BADGE), ("clone URL", install, _CLONE)):
            found = [g[1] for g in pattern.findall("".join(cell["source"]))]
            if not found:
                problems.append(f"{path.name}: no {what}")
            problems += [f"{path.name}: {what} names {s}, REPO_SLUG is {slug}"
                         for s in found if s != slug]
    return problems


def set_repo_slug(slug: str, root: str | Path = ROOT) -> list[Path]:
    """Point the course in ``root`` at the GitHub repository ``slug`` (``owner/name``).

    Rewrites ``REPO_SLUG`` in course_lib/__init__.py, and in every notebooks/*.ipynb the Colab
    badge URLs of the first cell and the clone URL of the install cell (the first code cell).
    Only those lines change; the rest of each file stays byte for byte. Idempotent: files that
    already agree are not written. Returns the files rewritten, relative to ``root``.

    Example: ``set_repo_slug("my-org/rl-course")`` after forking the course to that repository.
    """
    check_repo_slug(slug)
    root = Path(root)
    init = root / "course_lib" / "__init__.py"
    text = init.read_bytes().decode("utf-8")
    new, n = _SLUG_LINE.subn(f'REPO_SLUG = "{slug}"', text)
    if n != 1:
        raise ValueError(f"{init}: expected one line REPO_SLUG = \"owner/name\", found {n}")
    rewrites = {init: (text, new)}
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        text = path.read_bytes().decode("utf-8")
        new = text
        for cell, pattern in zip(_first_cells(json.loads(text), path), (_BADGE, _CLONE)):
            lines = cell["source"]
            for line in [lines] if isinstance(lines, str) else lines:
                fixed = pattern.sub(lambda m: m[1] + slug + m[3], line)
                # replace the line as JSON encodes it, so the rest of the file stays as it is
                old = json.dumps(line, ensure_ascii=False)
                if fixed != line and old not in new:
                    raise ValueError(f"{path.name}: cannot find the line {old} in the file")
                new = new.replace(old, json.dumps(fixed, ensure_ascii=False), 1)
        rewrites[path] = (text, new)
    changed = []
    for path, (text, new) in rewrites.items():  # written only once every file was read
        if new != text:
            path.write_bytes(new.encode("utf-8"))
            changed.append(path.relative_to(root))
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/slug.py", description="Point the notebooks' Colab badges, "
                                 "clone URLs and course_lib.REPO_SLUG at a GitHub repository.")
    ap.add_argument("slug", nargs="?", help="owner/name")
    ap.add_argument("--check", action="store_true", help="only list what disagrees with REPO_SLUG (exit 1 if any)")
    args = ap.parse_args(argv)
    if args.check or not args.slug:
        problems = repo_slug_mismatches()
        print("\n".join(problems) or "every badge and clone URL agrees with REPO_SLUG")
        return 1 if problems else 0
    try:
        changed = set_repo_slug(args.slug)
    except ValueError as err:
        print(f"slug: {err}", file=sys.stderr)
        return 2
    print("\n".join(map(str, changed)) or "already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
