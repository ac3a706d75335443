"""GSM8K: answer extraction and numeric normalisation, the bundled data, the prompts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import DATA_DIR
from course_lib.tasks import gsm8k
from course_lib.tasks.common import Score

G18 = "She sells 9 eggs at $2 each: 9 * 2 = <<9*2=18>>18.\n#### 18"
BIG = "12345678901234567890123"

# (completion, gold, correct, well_formed, words in the reason)
EDGE_CASES = [
    # the three markers
    ("9 * 2 = 18\n#### 18", G18, True, True, "correct"),
    ("#### 18", "18", True, True, "correct"),
    ("####18", "18", True, True, "correct"),
    ("#### 18\n", G18, True, True, "correct"),
    ("So the answer is \\boxed{18}.", G18, True, True, "correct"),
    ("\\boxed{18} and some words after", G18, True, True, "correct"),
    ("<answer>18</answer>", G18, True, True, "correct"),
    ("<answer> 18 </answer>", G18, True, True, "correct"),
    # the last complete marked answer counts, whatever its marker
    ("#### 18\n#### 17", G18, False, True, "answer 17, expected 18"),
    ("\\boxed{17} then\n#### 18", G18, True, True, "correct"),
    ("#### 18 then \\boxed{17}", G18, False, True, "boxed answer 17"),
    ("<answer>17</answer> \\boxed{18}", G18, True, True, "correct"),
    ("\\boxed{18}\n\n#### 17", G18, False, True, "#### answer 17"),
    ("<answer>18</answer><answer>17", G18, True, True, "correct"),
    ("\\boxed{17} \\boxed{18", G18, False, True, "boxed answer 17"),
    ("\\boxed{18", G18, False, False, "no answer marked"),
    ("<answer>18", G18, False, False, "no answer marked"),
    ("The answer is 18", G18, False, False, "no answer marked"),
    ("18", G18, False, False, "no answer marked"),
    ("", G18, False, False, "no answer marked"),
    ("#### ", G18, False, False, "empty #### answer"),
    ("\\boxed{}", G18, False, False, "empty boxed answer"),
    # normalisation: commas, $, trailing period, signs, decimals, leading zeros
    ("#### 1,000", "1000", True, True, "correct"),
    ("#### 1000", "#### 1,000", True, True, "correct"),
    ("#### 1,234,567", "1234567", True, True, "correct"),
    ("#### 1,00", "100", False, False, "not a number"),
    ("#### 18.", G18, True, True, "correct"),
    ("#### $18", G18, True, True, "correct"),
    ("#### $18.00", G18, True, True, "correct"),
    ("\\boxed{\\$18}", G18, True, True, "correct"),
    ("#### 18.0", G18, True, True, "correct"),
    ("#### 018", G18, True, True, "correct"),
    ("#### 18.5", G18, False, True, "answer 18.5, expected 18"),
    ("#### -7", "-7", True, True, "correct"),
    ("#### -7", "7", False, True, "answer -7, expected 7"),
    ("#### +7", "7", True, True, "correct"),
    ("#### $-7", "-7", True, True, "correct"),
    ("#### -$7", "-7", True, True, "correct"),
    ("#### --7", "7", False, False, "not a number"),
    ("#### .5", "0.5", True, True, "correct"),
    ("#### 0.50", ".5", True, True, "correct"),
    ("#### 5.", "5", True, True, "correct"),
    ("#### -0", "0", True, True, "correct"),
    (f"#### {BIG}", f"#### {BIG}", True, True, "correct"),
    (f"#### {BIG[:-1]}4", BIG, False, True, "expected"),
    # not numbers
    ("#### 18 apples", G18, False, False, "not a number"),
    ("#### eighteen", G18, False, False, "not a number"),
    ("#### 18%", G18, False, False, "not a number"),
    ("#### 1e1", "10", False, False, "not a number"),
    ("#### 0x12", G18, False, False, "not a number"),
    ("#### 1_8", G18, False, False, "not a number"),
    ("#### 3/4", "0.75", False, False, "not a number"),
    ("#### \u0661\u0668", G18, False, False, "not a number"),  # Arabic-Indic 18
    ("#### \uff11\uff18", G18, False, False, "not a number"),  # fullwidth 18
    ("\\boxed{{18}}", G18, False, False, "not a number"),
    ("#### __import__('os')", G18, False, False, "not a number"),
    # sizes
    ("#### " + "9" * 10_000, G18, False, False, "too long"),
    ("\\boxed{" + "9" * 1_000_000 + "}", G18, False, False, "too long"),
    ("x" * 1_000_000, G18, False, False, "no answer marked"),
    ("9" * 1_000_000, G18, False, False, "no answer marked"),
    ("\\boxed{" * 100_000, G18, False, False, "boxed answer too long"),  # open after 256 chars
    ("{" * 100_000 + "#### 18", G18, True, True, "correct"),
    # LaTeX and typographic spellings of one number: thousands separators, a spaced currency sign
    ("#### 1\\,000", "1000", True, True, "correct"),
    ("#### 1\\ 000", "1000", True, True, "correct"),
    ("#### 1\u2009000", "1000", True, True, "correct"),  # thin space
    ("#### 1\u202f000", "1000", True, True, "correct"),  # narrow no-break space
    ("\\boxed{1{,}000}", "1000", True, True, "correct"),
    ("\\boxed{12{,}345{,}678.5}", "12345678.5", True, True, "correct"),
    ("#### $ 18", G18, True, True, "correct"),
    ("\\boxed{\\$ 18}", G18, True, True, "correct"),
    ("#### -$ 7", "-7", True, True, "correct"),
    ("#### 1 000", "1000", False, False, "not a number"),  # a plain space may separate two numbers
    ("#### 1\\,00", "100", False, False, "not a number"),
    ("#### 1{,}0\\,000", "10000", False, False, "not a number"),
    # TeX spacing commands inside the digit groups: a negative thin space around a separator
    # (TeX writers tighten "1,\!000"), medium and thick spaces as separators, with or without \$
    ("#### 1\\!,\\!000", "1000", True, True, "correct"),
    ("#### 1,\\!000", "1000", True, True, "correct"),
    ("\\boxed{1{,}\\!000}", "1000", True, True, "correct"),
    ("\\boxed{\\$1\\!,\\!234}", "1234", True, True, "correct"),
    ("#### \\$ 12\\!,\\!345.50", "12345.5", True, True, "correct"),
    ("<answer>-\\$1\\!,\\!000</answer>", "-1000", True, True, "correct"),
    ("#### 1\\;000", "1000", True, True, "correct"),
    ("#### 1\\:000", "1000", True, True, "correct"),
    ("#### 1\\!000", "1000", False, False, "not a number"),  # a negative space alone separates nothing
    ("#### 1\\!,\\!00", "100", False, False, "not a number"),  # grouping still checked
    ("#### 1\\!,\\!\\!,000", "1000", False, False, "not a number"),  # one separator per gap
    # malformed grouping: the first group has no leading zero, later groups exactly three digits
    ("#### 01,000", "1000", False, False, "not a number"),
    ("#### 012,345", "12345", False, False, "not a number"),
    ("#### 0,100", "100", False, False, "not a number"),  # a list, or a decimal comma
    ("#### 1,0000", "10000", False, False, "not a number"),
    ("#### 1,000.000,5", "1000.0005", False, False, "not a number"),
    # the last complete answer wins, however many unfinished or long blocks follow
    ("\\boxed{18} " + "\\boxed{ " * 6, G18, True, True, "correct"),
    ("\\boxed{17} \\boxed{18}" + " \\boxed{" * 30, G18, True, True, "correct"),
    ("\\boxed{18} <answer>" + "1" * 300 + "</answer>", G18, False, False, "answer too long"),
    ("<answer>18</answer> <answer>" + "x" * 300 + "</answer>", G18, False, False, "too long"),
    ("<answer>17</answer> <answer>" + " " * 300 + "18</answer>", G18, True, True, "correct"),
    ("\\boxed{18} \\boxed{" + "x" * 300, G18, False, False, "boxed answer too long"),
    # the longest gold the verifier accepts
    ("#### " + "9" * 64, "9" * 64, True, True, "correct"),
]


@pytest.mark.parametrize(
    "completion, gold, correct, well_formed, reason",
    EDGE_CASES,
    ids=[f"{i:02d}-{row[4][:20]}" for i, row in enumerate(EDGE_CASES)],
)
def test_edge_cases(completion, gold, correct, well_formed, reason):
    s = gsm8k.score(completion, gold)
    assert isinstance(s, Score)
    assert (s.correct, s.well_formed) == (correct, well_formed), s.reason
    assert s.reward == (1.0 if correct else 0.0)
    assert reason in s.reason
    assert len(s.reason) < 120


def test_edge_table_is_large():
    assert len(EDGE_CASES) >= 40


# mode="last_number": (completion, gold, correct); a number is a whole word
LAST_NUMBER_CASES = [
    ("9 * 2 = 18, so she makes 18 dollars.", G18, True),
    ("She makes $1,000.", G18, False),
    ("She makes $1,000.", "1000", True),
    ("I made 17 then fixed it: 18.", G18, True),
    ("no number at all", G18, False),
    ("#### 17 although 18", G18, False),  # a marked answer still wins
    ("a total of -5", "-5", True),
    ("5-3 = 2", "2", True),
    ("it costs 18, so", G18, True),  # a trailing comma is punctuation
    ("she has 18 songs, each an mp3", G18, True),  # digits inside words are not numbers
    ("she has 18 apples, x2", G18, True),
    ("it is 18 (file v1.2)", G18, True),
    ("user abc123", "123", False),
    ("on the 3rd day", "3", False),
    ("version 1.2.3", "1.2", False),
]


@pytest.mark.parametrize(
    "completion, gold, correct", LAST_NUMBER_CASES, ids=[row[0][:30] for row in LAST_NUMBER_CASES]
)
def test_last_number_mode_is_opt_in(completion, gold, correct):
    assert gsm8k.score(completion, gold, mode="last_number").correct == correct
    if "####" not in completion:
        assert not gsm8k.score(completion, gold).correct


# (gold, exception, words in the message)
BAD_GOLDS = [
    ("#### eighteen", ValueError, "is not a number"),
    ("#### 01,000", ValueError, "is not a number"),
    ("1" * 65, ValueError, "65 characters"),
    ("She had 9.\n#### " + "1" * 70, ValueError, "70 characters"),
    (10**64, ValueError, "65 characters"),
    (18.0, TypeError, "gold must be"),
]


@pytest.mark.parametrize(
    "gold, error, words", BAD_GOLDS, ids=[f"{i}-{row[2]}" for i, row in enumerate(BAD_GOLDS)]
)
def test_bad_gold_names_the_problem(gold, error, words):
    with pytest.raises(error, match=words):
        gsm8k.score("#### 18", gold)


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="mode must be"):
        gsm8k.score("#### 18", G18, mode="lenient")
    with pytest.raises(TypeError, match="completion must be a str"):
        gsm8k.score(b"#### 18", G18)
    assert gsm8k.score("#### 18", 18).correct  # an int gold is fine


# --------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=timedelta(milliseconds=500))
@given(st.text(max_size=300))
def test_random_text_never_raises(text):
    for wrapped in (text, f"#### {text}", f"\\boxed{{{text}}}", f"<answer>{text}</answer>"):
        s = gsm8k.score(wrapped, G18, mode="last_number")
        assert isinstance(s, Score) and s.reward in (0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(
    # up to 10**15: a 25-digit number in TeX's widest separators (1\!,\!000...) is longer than the
    # verifier's 64-character cap on a marked answer, which rejects it on purpose
    st.integers(-(10**15), 10**15),
    st.sampled_from(["{}", "{:,}", "${:,}", "$ {:,}", "{}.00", "{}."]),
    st.sampled_from([",", "{,}", "\\,", "\\ ", "\u2009", "\u202f", "\\!,\\!", ",\\!", "{,}\\!", "\\;", "\\:"]),
)
def test_any_spelling_of_the_gold_number_is_correct(n, spelling, separator):
    text = spelling.format(n).replace(",", separator)
    if text.startswith("$-"):  # "$-5" and "-$5" both mean -5; check the usual one too
        text = "-$" + text[2:]
    assert gsm8k.score(f"#### {text}", f"#### {n}").correct
    assert not gsm8k.score(f"#### {n + 1}", f"#### {n}").correct


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize("split, size", [("train", 7473), ("test", 1319)])
def test_every_bundled_gold_answer_verifies_against_itself(split, size):
    with (DATA_DIR / "gsm8k" / f"{split}.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == size
    failures = [r["answer"][-40:] for r in rows if not gsm8k.score(r["answer"], r["answer"]).correct]
    assert failures == []


def test_bundled_copy_keeps_its_licence():
    assert "MIT License" in (DATA_DIR / "gsm8k" / "LICENSE").read_text()


def test_load_falls_back_to_the_bundled_copy_offline(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = gsm8k.load("test")
    assert "bundled copy" in capsys.readouterr().out
    assert len(rows) == 1319 and set(rows[0]) == {"question", "answer"}
    sample = gsm8k.load("train", n=5, seed=1)
    assert len(sample) == 5 and sample == gsm8k.load("train", n=5, seed=1)
    assert sample != gsm8k.load("train", n=5, seed=2)


def test_load_names_both_sources_when_neither_is_there(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(gsm8k, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="openai/gsm8k.*missing"):
        gsm8k.load("train")


def test_prompts():
    ex = {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?"}
    boxed = gsm8k.prompt(ex)
    assert boxed.startswith(ex["question"])
    assert boxed.endswith("output the final answer within \\boxed{}.")
    r1 = gsm8k.prompt(ex, style="r1")
    assert ex["question"] in r1 and "<answer>" in r1 and r1.endswith("<think>")
    with pytest.raises(ValueError, match="style"):
        gsm8k.prompt(ex, style="chat")


@pytest.mark.parametrize("line", ['{"question": "q"', '{"question": "q"}', '[1, 2]'])
def test_a_malformed_bundled_line_names_file_and_line(tmp_path, monkeypatch, line):
    from course_lib.tasks import gsm8k as G

    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n' + line + "\n")
    monkeypatch.setattr(G, "DATA_DIR", tmp_path)
    monkeypatch.setattr(G, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(ValueError, match=r"test.jsonl, line 2: not a GSM8K row"):
        G.load("test")
