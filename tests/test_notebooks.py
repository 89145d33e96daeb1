"""Every exercise notebook, with the reference answers filled in, runs top to bottom and
every check cell in it passes (COURSE_QUICK=1 shortens training)."""

from __future__ import annotations

import pytest

from grader import nbgrader_course, notebooks, paths

# These tracks' notebooks already run top to bottom, test cells included, in the nbgrader
# round trip (tests/grader/test_nbgrader.py), which checks that no cell fails there.
RUN_BY_THE_NBGRADER_ROUND_TRIP = {"diffusion"}
SCRIPTS = [script for track in paths.tracks() if track not in RUN_BY_THE_NBGRADER_ROUND_TRIP
           for script in paths.solution_scripts(track)]


def answered_exercise_notebook(script):
    """The student's notebook (set-up and check cells included) with the reference answers typed in."""
    exercise = notebooks.read_notebook(paths.EXERCISES / script.parent.name / script.name)
    return nbgrader_course.answered(exercise, notebooks.read_notebook(script))


def check_cell_outputs(notebook) -> dict[str, str]:
    """What each `check("...")` cell showed, by its source."""
    return {cell.source: "".join(output.get("data", {}).get("text/plain", "") + output.get("text", "")
                                 for output in cell.outputs)
            for cell in notebook.cells if cell.cell_type == "code" and cell.source.startswith("check(")}


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_answered_notebook_runs_and_its_checks_pass(script, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("COURSE_QUICK", "1")
    notebook = answered_exercise_notebook(script)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    shown = check_cell_outputs(notebook)
    assert shown, "no check cells: run `grader sync`"
    failing = {cell: text for cell, text in shown.items() if not text.startswith("✓")}
    assert not failing, failing
