"""The course from its wheel, outside the repository, as on Colab or a JupyterHub.

`uv build` makes the wheel; it is installed into a fresh virtual environment in a temporary
folder (the versions pinned by requirements.txt, so nothing new is resolved). One exercise
notebook per track is copied there under another name, its first answer is filled in from
the reference, and it runs in that environment's kernel up to its first check cell, which
must pass. The wheel holds no hidden tests and no solutions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import nbgrader_course, notebooks, paths, percent

# Runs in the installed environment: execute a notebook, print each check cell's output.
RUN_NOTEBOOK = """
import json, sys
import nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], 4)
NotebookClient(notebook, timeout=300, kernel_name="python3").execute(cwd=sys.argv[2])
print(json.dumps([["".join(o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in cell.outputs)
                   for cell in notebook.cells if cell.source.startswith("check(")]]))
"""


def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is not on PATH: install it (`pip install uv`) to build and install the wheel.")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([uv(), "build", "--wheel", "--out-dir", str(out), str(paths.REPO_ROOT)], check=True,
                   capture_output=True)
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The python of a fresh virtual environment with the course installed from its wheel."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(python), str(wheel),
                    "--constraint", str(paths.REPO_ROOT / "requirements.txt")], check=True)
    return python


def test_the_wheel_ships_the_exercises_and_no_answers(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "grader/exercises/diffusion/test_03_ddpm.py" in names and "grader/exercises/diffusion/03_ddpm.ipynb" in names
    assert any(name.startswith("course/pretrained/") for name in names)
    assert not [name for name in names if name.startswith(("grader/hidden/", "solutions/"))]


def first_exercise_filled_in(track: str, script: Path) -> nbformat.NotebookNode:
    """The student's notebook up to its first check cell, with that exercise's reference answer."""
    exercise = notebooks.read_notebook(paths.EXERCISES / track / f"{script.stem}.ipynb")
    answered = nbgrader_course.answered(exercise, notebooks.read_notebook(script))
    first = percent.exercises(script)[0].name
    (check_at,) = [i for i, cell in enumerate(answered.cells) if cell.source == f'check("{first}")']
    answered.cells = answered.cells[:check_at + 1]
    return answered


@pytest.mark.slow
def test_a_check_cell_passes_in_a_notebook_outside_the_repository(installed, tmp_path):
    site = subprocess.run([str(installed), "-c", "import grader.paths as p; print(p.has_solutions(), p.IN_CHECKOUT)"],
                          check=True, capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert site == ["False", "False"]
    runner = tmp_path / "run_notebook.py"
    runner.write_text(RUN_NOTEBOOK)
    for track in paths.tracks():
        script = paths.solution_scripts(track)[0]
        notebook = tmp_path / f"my_{track}_{script.stem}.ipynb"  # moved out of exercises/ and renamed
        nbformat.write(first_exercise_filled_in(track, script), notebook)
        done = subprocess.run([str(installed), str(runner), str(notebook), str(tmp_path)], capture_output=True,
                              text=True, cwd=tmp_path, env={"COURSE_QUICK": "1", "MPLBACKEND": "Agg",
                                                            "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert done.returncode == 0, done.stderr[-3000:]
        (shown,) = json.loads(done.stdout.splitlines()[-1])
        first = percent.exercises(script)[0].name
        assert shown[0].startswith(f"✓ {first}: "), (track, shown)
