"""`grader sync`: exercises are generated from the solutions and kept current."""

from __future__ import annotations

import json
import shutil

import pytest

from grader import cli, paths, sync

SOLUTION = '''# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: nbgrader,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A chapter

# %% nbgrader={"grade": false, "grade_id": "double", "locked": false, "schema_version": 3, "solution": true, "task": false}
def double(x):
    """Twice x."""
    # Hint: multiply.
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION

# %%
print(double(21))
'''


def test_committed_exercises_are_current():
    assert sync.sync(check=True) == []


@pytest.fixture
def course_dirs(tmp_path, monkeypatch):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    (solutions / "toy").mkdir(parents=True)
    (solutions / "toy" / "01_double.py").write_text(SOLUTION)
    monkeypatch.setattr(paths, "SOLUTIONS", solutions)
    monkeypatch.setattr(paths, "EXERCISES", exercises)
    return solutions, exercises


def test_stub_names_the_exercise_and_keeps_the_hints(course_dirs):
    _, exercises = course_dirs
    written = sync.sync()
    assert written == [f"wrote: {exercises / 'toy/01_double.py'}", f"wrote: {exercises / 'toy/01_double.ipynb'}"]
    script = (exercises / "toy" / "01_double.py").read_text()
    assert "return 2 * x" not in script and "BEGIN SOLUTION" not in script
    assert "# Hint: multiply." in script and '"""Twice x."""' in script
    assert "raise NotImplementedError(\"Exercise 'double' is not done yet" in script
    assert "print(double(21))" in script  # demo cells are kept


def test_notebook_is_paired_without_outputs(course_dirs):
    _, exercises = course_dirs
    sync.sync()
    notebook = json.loads((exercises / "toy" / "01_double.ipynb").read_text())
    assert notebook["metadata"]["jupytext"]["formats"] == "ipynb,py:percent"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    # The set-up cell, the exercise (id: its grade_id), its check cell, the demo.
    assert [c["id"] for c in notebook["cells"]] == ["cell-0", "cell-1", "double", "cell-3", "cell-4"]
    assert code[1]["metadata"]["nbgrader"]["grade_id"] == "double"
    assert "".join(code[2]["source"]) == 'check("double")'


def test_check_names_stale_and_orphaned_files(course_dirs, capsys):
    solutions, exercises = course_dirs
    sync.sync()
    assert cli.main(["sync", "--check"]) == 0
    (exercises / "toy" / "01_double.py").write_text("edited by hand\n")
    shutil.copy(solutions / "toy" / "01_double.py", exercises / "toy" / "02_gone.py")
    assert cli.main(["sync", "--check"]) == 1
    out = capsys.readouterr().out
    assert "stale: " in out and "01_double.py" in out and "02_gone.py" in out
    assert (exercises / "toy" / "01_double.py").read_text() == "edited by hand\n"  # --check changes nothing


def test_solution_region_outside_a_solution_cell_is_refused(course_dirs):
    solutions, _ = course_dirs
    text = SOLUTION.replace(' nbgrader={"grade": false, "grade_id": "double", "locked": false, '
                            '"schema_version": 3, "solution": true, "task": false}', "")
    (solutions / "toy" / "01_double.py").write_text(text)
    with pytest.raises(RuntimeError, match="non-solution cell"):
        sync.sync()
