"""Every solution notebook runs top to bottom (COURSE_QUICK=1 shortens training)."""

from __future__ import annotations

import pytest

from grader import notebooks, paths

# These tracks' notebooks already run top to bottom, test cells included, in the nbgrader
# round trip (tests/grader/test_nbgrader.py), which checks that no cell fails there.
RUN_BY_THE_NBGRADER_ROUND_TRIP = {"diffusion"}
SCRIPTS = [script for track in paths.tracks() if track not in RUN_BY_THE_NBGRADER_ROUND_TRIP
           for script in paths.solution_scripts(track)]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_solution_notebook_runs(script, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("COURSE_QUICK", "1")
    notebook = notebooks.read_notebook(script)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
