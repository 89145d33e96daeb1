"""`grader gradescope` and `grader solutions-branch`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader import gradescope, paths, solutions_branch

BAD = Path(__file__).parent / "bad_submissions"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def clone(tmp_path) -> Path:
    """A fresh clone of this repository (its committed state), with a committer configured."""
    repo = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(paths.REPO_ROOT), str(repo)], check=True)
    git(repo, "config", "user.email", "teacher@example.org")
    git(repo, "config", "user.name", "Teacher")
    return repo


def test_solutions_branch_holds_the_answers_and_leaves_the_checkout_alone(clone):
    head = git(clone, "rev-parse", "HEAD")
    first = solutions_branch.update(clone)
    assert first is not None
    for script in paths.solution_scripts("diffusion", clone / "solutions"):
        on_branch = git(clone, "show", f"solutions:exercises/diffusion/{script.name}")
        assert on_branch == script.read_text().strip()
        notebook = json.loads(git(clone, "show", f"solutions:exercises/diffusion/{script.stem}.ipynb"))
        assert "### BEGIN SOLUTION" in "".join("".join(c["source"]) for c in notebook["cells"])
    assert git(clone, "show", "solutions:exercises/diffusion/test_03_ddpm.py")  # visible tests kept
    assert git(clone, "rev-parse", "HEAD") == head and git(clone, "status", "--porcelain") == ""

    assert solutions_branch.update(clone) is None  # nothing changed, no new commit

    script = clone / "solutions" / "diffusion" / "01_langevin.py"
    script.write_text(script.read_text() + "\n# %%\nprint('one more demo')\n")
    git(clone, "commit", "-qam", "A new demo")
    second = solutions_branch.update(clone)
    assert git(clone, "rev-parse", f"{second}^1", f"{second}^2").split() == [first, git(clone, "rev-parse", "HEAD")]
    assert "one more demo" in git(clone, "show", "solutions:exercises/diffusion/01_langevin.py")


def test_gradescope_zip_runs_the_hidden_tests(tmp_path):
    archive = gradescope.build_zip(tmp_path / "autograder.zip", ["diffusion"])
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
        assert {"setup.sh", "run_autograder", "pyproject.toml", "uv.lock"} <= names
        assert "grader/hidden/diffusion/test_01_langevin.py" in names and "solutions/diffusion/03_ddpm.py" in names
        assert not any("__pycache__" in name or name.startswith(("exercises/", ".grader")) for name in names)
        assert zipped.getinfo("run_autograder").external_attr >> 16 & 0o111
        zipped.extractall(tmp_path / "autograder" / "source")

    # Gradescope's layout: /autograder/{source,submission,results}; the student uploaded one file.
    root = tmp_path / "autograder"
    (root / "results").mkdir()
    shutil.copytree(BAD / "good", root / "submission")
    run = root / "source" / "run_autograder"
    run.chmod(0o755)
    env = {**os.environ, "AUTOGRADER": str(root), "GRADER": f"{sys.executable} -m grader.cli",
           "PYTHONPATH": str(root / "source")}  # the zip's own grader and course, not this checkout's
    subprocess.run([str(run)], env=env, check=True, capture_output=True, timeout=600)
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 10  # 01_langevin right, the track's other scripts missing
    assert all(test["visibility"] == "visible" and "max_score" in test for test in results["tests"])
