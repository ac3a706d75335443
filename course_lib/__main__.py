"""Command line: ``python -m course_lib COMMAND [options]``.

Each command lives in its own module, which parses its own options
(``python -m course_lib COMMAND --help``).
"""

from __future__ import annotations

import importlib
import sys

# command -> (module whose ``main(argv) -> int`` runs it, one-line help)
COMMANDS = {
    "demo": ("course_lib.demo", "the main job of `make demo`"),
    "pretrain-micro": ("course_lib.pretrain", "train the micro base model from scratch"),
    "train": ("course_lib.trainer", "one on-policy run: GRPO or signed SFT"),
    "evaluate": ("course_lib.evaluate", "held-out accuracy and lengths of a run"),
    "reproduce": ("course_lib.reproduce", "the paper's comparison, every objective and seed"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m course_lib COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
