"""The README quotes the shipped results: its tables are the ones the results files make."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib import DATA_DIR
from course_lib import reproduce as R

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
MICRO = DATA_DIR / "results" / "micro_results.json"


@pytest.mark.parametrize("table", [R.summary_table, R.equivalence_table, R.pass_at_k_table, R.ablation_table])
def test_readme_tables_are_the_shipped_micro_results(table):
    assert table(R.load_results(MICRO)) in README, f"README's copy of {table.__name__} differs from {MICRO.name}"


def test_readme_quotes_the_command_that_made_them():
    res = R.load_results(MICRO)
    assert f"`{res['command']}`" in README
    assert f"{res['settings']['steps']} steps" in README and f"{len({r['seed'] for r in res['runs']})} seeds" in README
