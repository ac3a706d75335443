"""tools/slug.py: pointing the notebooks' badges, clone URLs and REPO_SLUG at another repository.

The slug is rewritten on a temporary copy of course_lib/__init__.py and the notebooks.
"""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import course_lib

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("slug", ROOT / "tools" / "slug.py")
slug_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(slug_tool)
check_repo_slug, repo_slug_mismatches, set_repo_slug = (
    slug_tool.check_repo_slug, slug_tool.repo_slug_mismatches, slug_tool.set_repo_slug)


@pytest.mark.parametrize("slug", ["rl-in-name-only/course", "a/b", "Some-Org9/my.repo_2-x",
                                  "x" * 39 + "/" + "y" * 100, "owner/.github", "o/a..b"])
def test_valid_slugs(slug):
    assert check_repo_slug(slug) == slug


@pytest.mark.parametrize("slug", ["", "course", "owner/", "/name", "a/b/c", "-owner/x",
                                  "owner-/x", "ow--ner/x", "own_er/x", "owner/na me", "o/.", "o/..",
                                  "o/x.git", "x" * 40 + "/y", "o/" + "y" * 101, 'o/x"', "ö/x",
                                  "https://github.com/o/x", "o/x\n"])
def test_invalid_slugs_raise_one_line(slug):
    with pytest.raises(ValueError) as err:
        check_repo_slug(slug)
    assert "\n" not in str(err.value).replace(repr(slug), "") and "owner/name" in str(err.value)


@pytest.fixture
def course_copy(tmp_path):
    """course_lib/__init__.py and notebooks/*.ipynb, copied: the real ones are never rewritten."""
    (tmp_path / "course_lib").mkdir()
    shutil.copy(ROOT / "course_lib" / "__init__.py", tmp_path / "course_lib")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(
        "*.md", "*.py", "*.png", "figures", "__pycache__", ".ipynb_checkpoints"))
    return tmp_path


def snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_set_repo_slug_rewrites_badges_clone_urls_and_repo_slug_only(course_copy):
    old, new = course_lib.REPO_SLUG, "someone/my-fork.course"
    before = snapshot(course_copy)
    changed = set_repo_slug(new, root=course_copy)
    after = snapshot(course_copy)
    assert sorted(changed) == sorted(before) and old == course_lib.REPO_SLUG
    assert repo_slug_mismatches(course_copy) == []
    assert f'REPO_SLUG = "{new}"' in after[Path("course_lib/__init__.py")].decode()
    for path, text in before.items():
        # the old slug appears only in REPO_SLUG, the badges and the clone URL
        assert after[path] == text.replace(old.encode(), new.encode()), path
        if path.suffix == ".ipynb":
            nb = json.loads(after[path])
            assert f"github/{new}/blob/main/notebooks/{path.name}" in "".join(nb["cells"][0]["source"])
    assert set_repo_slug(new, root=course_copy) == [] and snapshot(course_copy) == after  # idempotent
    set_repo_slug(old, root=course_copy)
    assert snapshot(course_copy) == before  # and reversible, byte for byte


def test_set_repo_slug_repairs_a_notebook_that_disagrees(course_copy):
    path = sorted((course_copy / "notebooks").glob("*.ipynb"))[0]
    path.write_bytes(path.read_bytes().replace(b"github.com/" + course_lib.REPO_SLUG.encode(),
                                               b"github.com/other/repo"))
    assert repo_slug_mismatches(course_copy) == [
        f"{path.name}: clone URL names other/repo, REPO_SLUG is {course_lib.REPO_SLUG}"]
    assert set_repo_slug(course_lib.REPO_SLUG, root=course_copy) == [Path("notebooks", path.name)]
    assert repo_slug_mismatches(course_copy) == []


def test_set_repo_slug_refuses_a_bad_slug_and_writes_nothing(course_copy):
    before = snapshot(course_copy)
    with pytest.raises(ValueError, match="not a GitHub repository"):
        set_repo_slug("not a slug", root=course_copy)
    assert snapshot(course_copy) == before



def test_badges_and_clone_urls_agree_with_repo_slug():
    assert repo_slug_mismatches() == []  # `make slug SLUG=owner/name` rewrites them all


@pytest.mark.parametrize("args, code, out", [(["--check"], 0, "every badge and clone URL agrees"),
                                             (["not a slug"], 2, "not a GitHub repository")])
def test_the_command_line(args, code, out):
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "slug.py"), *args], capture_output=True, text=True)
    assert res.returncode == code and out in res.stdout + res.stderr
    assert len((res.stdout + res.stderr).strip().splitlines()) == 1
