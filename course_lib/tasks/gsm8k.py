r"""GSM8K: grade-school word problems whose answer is one number.

What is here:

- ``load``: ``openai/gsm8k`` (config ``main``) through ``datasets`` when the Hub answers, else
  the copy bundled in ``data/gsm8k`` (MIT licence, see its LICENSE); one printed line says which.
- ``gold_answer``: the number after the ``#### `` line of a GSM8K answer text. ``prompt``: the
  R1-style think/answer template, or the paper's rebuttal style (question + ``BOXED_SUFFIX``).
- ``score``: the verifier. The completion's answer is the *last* complete one marked by
  ``#### N`` (rest of that line), ``\boxed{N}`` or ``<answer>N</answer>``; an over-long one
  still counts (and is wrong). A ``\boxed{`` still open at the end of the text is unfinished
  and skipped, however many there are; one still open after ``4 * MAX_ANSWER_CHARS``
  characters counts as over-long, so that no call scans the whole text (Math-Verify does).
  Text without a marker is not an answer; ``mode="last_number"`` opts into the last number
  that is a whole word (not the digits of ``mp3``, ``x2``, ``3rd``; TinyZero's fallback takes
  any digits, Math-Verify wants a space or ``=`` before a number).

Normalisation before comparing: surrounding spaces, a leading ``$`` or ``\$`` (also after a
sign or before spaces: ``-$ 7``), a trailing period (``5.``), a leading ``+``, decimal zeros
(``72.0 == 72``, ``.5 == 0.5``, ``-0 == 0``) and thousands separators: ``,`` or its LaTeX and
typographic spellings ``{,}``, ``\,``, ``\:``, ``\;``, ``\ ``, U+2009, U+202F, possibly with TeX's
negative space ``\!`` around it (``1\!,\!000``; ``\!`` alone separates nothing). Grouping must be
well formed: 1-3 digits without a leading zero, then groups of exactly 3, none in the fraction.
``0,100`` is a list or a decimal comma, not 100 (TinyZero deletes every comma; Math-Verify reads
``1,05`` as 1.05, ``1 000`` as 1000; here a plain space may separate two numbers). The comparison is
on normalised digit strings (sign, integer digits without leading zeros, fraction digits
without trailing zeros): exact, and no unbounded digit string is ever turned into an int.

Simplified on purpose:

- No units, percentages, fractions like ``3/4`` or LaTeX beyond ``\$`` and separators: GSM8K's
  gold answers are plain numbers, and a lenient parser is one more thing a policy can exploit.
- Answers longer than ``MAX_ANSWER_CHARS`` are wrong without being parsed, so a longer gold
  answer is an error (no completion could match it).
"""

from __future__ import annotations

import functools
import json
import random
import re

from .. import DATA_DIR
from .common import Score, hub_reachable

HUB_ID = "openai/gsm8k"
MAX_ANSWER_CHARS = 64  # the longest GSM8K gold answer has 9 characters
LAST_NUMBER_WINDOW = 2000  # mode="last_number" looks only at the completion's tail
_BOXED_WINDOW = 4 * MAX_ANSWER_CHARS  # a \boxed{ still open after this many chars is over-long

BOXED_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."
R1_TEMPLATE = (
    "A conversation between User and Assistant. The User asks a question and the Assistant "
    "solves it. The Assistant first thinks about the reasoning process and then gives the "
    "answer. The reasoning goes inside <think> </think> tags and the answer inside "
    "<answer> </answer> tags.\n"
    "User: {question} Put only the final number inside the answer tags, for example "
    "<answer> 42 </answer>.\n"
    "Assistant: Let me solve this step by step.\n<think>"
)
STYLES = ("boxed", "r1")
MODES = ("marked", "last_number")

_NUMBER = re.compile(r"([0-9]+)(?:\.([0-9]*))?|\.([0-9]+)")
_THOUSANDS = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+")
# a thousands separator: , {,} \, \: \; \  or a thin space, with TeX's negative thin space \! around it
_SEPARATOR = re.compile(r"(?:\\!)*(?:\{,\}|,|\\[,:; ]|[\u2009\u202f])(?:\\!)*")
# mode="last_number": a number is a whole word, so not the digits of "mp3", "x2", "3rd", "v1.2"
_ANY_NUMBER = re.compile(
    r"(?<![\w.,])[+-]?\$?"  # nothing glued on the left
    r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.[0-9]+)?(?<=[0-9])"  # 1,000  18  1.5  .5
    r"(?!\w|[.,][0-9])"  # nor on the right
)


# --------------------------------------------------------------------------- answers


def normalize(text: str) -> tuple[str, str, str] | None:
    """Canonical form ``(sign, integer digits, fraction digits)`` of a number, or None.

    Example:
        >>> normalize("$1,000.50")
        ('', '1000', '5')
        >>> normalize("-0.0") == normalize("0") == ('', '0', '')
        True
        >>> normalize("12 apples") is None
        True
    """
    s = text.strip()
    if len(s) > MAX_ANSWER_CHARS or not s:
        return None
    sign = ""
    if s[0] in "+-":
        sign, s = s[0], s[1:].lstrip()
    if s.startswith(("$", "\\$")):
        s = s.removeprefix("\\")[1:].lstrip()
    if not sign and s[:1] in ("+", "-"):  # "$-5"
        sign, s = s[0], s[1:]
    if s.endswith(".") and s[:-1].count(".") == 0:
        s = s[:-1]  # "5." at the end of a sentence
    s = _SEPARATOR.sub(",", s)
    if "," in s:
        whole, _, frac = s.partition(".")
        if "," in frac or not _THOUSANDS.fullmatch(whole):
            return None  # "1,2", "0,100" and "1.000,5" are not numbers; "1,000" is
        s = s.replace(",", "")
    m = _NUMBER.fullmatch(s)
    if m is None:
        return None
    whole = (m.group(1) or "").lstrip("0") or "0"
    frac = (m.group(2) or m.group(3) or "").rstrip("0")
    if sign == "+" or (whole == "0" and not frac):
        sign = ""
    return sign, whole, frac


def _show(key: tuple[str, str, str]) -> str:
    sign, whole, frac = key
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


@functools.lru_cache(maxsize=65536)
def gold_answer(gold: str) -> tuple[str, str, str]:
    """Normalised gold number from a GSM8K answer text (``... #### 18``) or a bare number.

    Raises:
        ValueError: the gold is not a number, or is longer than ``MAX_ANSWER_CHARS`` (a data
            problem, not a model error).

    Example:
        >>> gold_answer("She makes 9 * 2 = $18.\\n#### 18")
        ('', '18', '')
    """
    text = gold
    if "####" in gold:
        text = gold[gold.rfind("####") + 4 :].split("\n", 1)[0]
    if len(text.strip()) > MAX_ANSWER_CHARS:  # normalize() would call it "not a number"
        raise ValueError(
            f"gold answer has {len(text.strip())} characters; answers over {MAX_ANSWER_CHARS} "
            "are always wrong, so no completion could match it"
        )
    key = normalize(text)
    if key is None:
        raise ValueError(
            f"gold answer {text.strip()[:40]!r} is not a number; pass the GSM8K answer text "
            "ending in '#### N' or the bare number"
        )
    return key


def _boxed(completion: str) -> tuple[int, str] | None:
    """Position and content of the last complete ``\\boxed{...}`` (nested braces allowed).

    A ``\\boxed{`` open at the end of the text is skipped; one open after ``_BOXED_WINDOW``
    characters is returned as an over-long answer. Bounded work: a skipped one starts in the
    last ``_BOXED_WINDOW`` characters, and an earlier one can only close before it.
    """
    end = len(completion)
    start = completion.rfind("\\boxed{")
    while start >= 0:
        body = start + len("\\boxed{")
        depth = 1
        for i in range(body, min(end, body + _BOXED_WINDOW)):
            ch = completion[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return start, completion[body:i]
        if body + _BOXED_WINDOW < len(completion):
            return start, completion[body : body + _BOXED_WINDOW]  # too long: wrong
        end = start
        start = completion.rfind("\\boxed{", 0, start)
    return None


def extract_answer(completion: str, mode: str = "marked") -> tuple[str, str] | None:
    """The completion's final answer as ``(marker, text)``, or None if there is none.

    ``marker`` is ``"####"``, ``"boxed"``, ``"answer"`` or ``"last number"``. The last
    complete marked answer wins, whichever marker it uses.

    Example:
        >>> extract_answer("#### 5 ... so \\\\boxed{7}")
        ('boxed', '7')
        >>> extract_answer("it is 7") is None
        True
    """
    candidates = []
    hashes = completion.rfind("####")
    if hashes >= 0:
        line = completion[hashes + 4 : hashes + 4 + 4 * MAX_ANSWER_CHARS]
        candidates.append((hashes, "####", line.split("\n", 1)[0]))
    boxed = _boxed(completion)
    if boxed is not None:
        candidates.append((boxed[0], "boxed", boxed[1]))
    close = completion.rfind("</answer>")
    if close >= 0:
        open_ = completion.rfind("<answer>", 0, close)  # a long block is an answer, and wrong
        if open_ >= 0:
            candidates.append((open_, "answer", completion[open_ + 8 : close]))
    if candidates:
        _, marker, text = max(candidates)
        return marker, text
    if mode == "last_number":
        numbers = _ANY_NUMBER.findall(completion[-LAST_NUMBER_WINDOW:])
        if numbers:
            return "last number", numbers[-1]
    return None


def score(completion: str, gold: str, *, mode: str = "marked") -> Score:
    """Verify a GSM8K completion against the gold answer; safe on any input.

    Args:
        completion: the model's text.
        gold: the full GSM8K answer text (with ``#### N``) or the bare number.
        mode: ``"marked"`` (default: only ``#### N``, ``\\boxed{N}``, ``<answer>N</answer>``
            count) or ``"last_number"`` (else the last number in the text).

    Returns:
        ``Score(reward, correct, well_formed, reason)``; reward 1.0 if correct.

    Example:
        >>> score("3 + 4 = 7\\n#### 7", "#### 7").reward
        1.0
        >>> score("\\\\boxed{1,000.0}", "1000").correct
        True
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion must be a str, got {type(completion).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(gold, int) and not isinstance(gold, bool):
        gold = str(gold)
    elif not isinstance(gold, str):
        raise TypeError(f"gold must be the GSM8K answer text or a number, got {type(gold).__name__}")
    want = gold_answer(gold)
    found = extract_answer(completion, mode)
    if found is None:
        return Score(0.0, False, False, "no answer marked with ####, \\boxed{} or <answer>")
    marker, text = found
    text = text.strip()
    if not text:
        return Score(0.0, False, False, f"empty {marker} answer")
    if len(text) > MAX_ANSWER_CHARS:
        return Score(0.0, False, False, f"{marker} answer too long (over {MAX_ANSWER_CHARS} chars)")
    got = normalize(text)
    if got is None:
        return Score(0.0, False, False, f"{marker} answer {text[:20]!r} is not a number")
    if got != want:
        return Score(0.0, False, True, f"{marker} answer {_show(got)}, expected {_show(want)}")
    return Score(1.0, True, True, f"correct: {_show(got)}")


# --------------------------------------------------------------------------- data


def _load_hub(split: str) -> list[dict] | str:
    """The hub rows of ``split``, or a short reason why they are not available."""
    if not hub_reachable():
        return "Hugging Face Hub not reachable"
    try:
        import datasets

        ds = datasets.load_dataset(HUB_ID, "main", split=split)
    except Exception as exc:  # any hub or cache failure means: use the bundled copy
        return f"could not load {HUB_ID} ({type(exc).__name__})"
    return [{"question": r["question"], "answer": r["answer"]} for r in ds]


def _read_bundled(path) -> list[dict]:
    """The rows of a bundled JSONL file; a malformed line is a ValueError naming file and line."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                rows.append({"question": str(r["question"]), "answer": str(r["answer"])})
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path}, line {number}: not a GSM8K row ({type(err).__name__}: {err}); "
                                 "restore the file from the repository") from None
    return rows


def load(split: str = "train", n: int | None = None, seed: int = 0) -> list[dict]:
    """GSM8K examples ``{"question": str, "answer": str}`` (answer ends in ``#### N``).

    Args:
        split: ``"train"`` (7,473 rows) or ``"test"`` (1,319 rows).
        n: how many; None for the whole split. A subset is a seeded random sample, kept
            in file order.
        seed: picks the subset.

    Example:
        >>> load("test", n=2)[0].keys()  # doctest: +SKIP
        dict_keys(['question', 'answer'])
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rows = _load_hub(split)
    if isinstance(rows, str):
        why = rows
        path = DATA_DIR / "gsm8k" / f"{split}.jsonl"
        if not path.exists():
            raise FileNotFoundError(
                f"GSM8K {split} split not found: {why} (hub dataset {HUB_ID}) and the bundled "
                f"copy {path} is missing; connect to the internet or restore data/gsm8k "
                "from the repository"
            )
        print(f"gsm8k: {why}; using the bundled copy in data/gsm8k ({split})")
        rows = _read_bundled(path)
    if n is not None and n < len(rows):
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), n))]
    return rows


def prompt(example: dict, style: str = "boxed") -> str:
    """The prompt for one question.

    Args:
        example: ``{"question": str, ...}``.
        style: ``"boxed"`` (default; the paper's rebuttal runs) or ``"r1"``.

    Example:
        >>> prompt({"question": "What is 3 + 4?"})
        "What is 3 + 4?\\nLet's think step by step and output the final answer within \\\\boxed{}."
    """
    if style == "boxed":
        return f"{example['question']}\n{BOXED_SUFFIX}"
    if style == "r1":
        return R1_TEMPLATE.format(question=example["question"])
    raise ValueError(f"gsm8k prompt style must be one of {STYLES}, got {style!r}")
