"""The cells that let a student check an exercise in the notebook itself.

`grader sync` (and `grader nbgrader build`) put a set-up cell first in every notebook and
a check cell, `check("forward_noise")`, after every exercise. The set-up cell installs the
course where it is missing (Colab: set `COURSE_PIP_SOURCE` to a wheel or git URL if the
course is not on the package index) and makes `check` (`grader.notebook_checks`).
The grader's loader skips both when it imports a script (they are demo code to it).
"""

from __future__ import annotations

from collections.abc import Callable

import nbformat

from grader import notebooks

SETUP_SOURCE = '''\
# Set-up: installs the course where it is missing (Colab), and makes `check("exercise")`,
# which runs that exercise's visible checks here in the notebook.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("course") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    os.environ.get("COURSE_PIP_SOURCE", "jax-genai-course")], check=True)

from grader.notebook_checks import exercise_checks

check = exercise_checks("{script}", globals())'''


def setup_cell(track: str, stem: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(SETUP_SOURCE.format(script=f"{track}/{stem}"))


def check_cell(exercise: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(f'check("{exercise}")')


def is_check_cell(cell: nbformat.NotebookNode) -> bool:
    """A `check("...")` cell (as `check_cell` writes it)."""
    return cell.cell_type == "code" and cell.source.startswith("check(")


def with_check_cells(notebook: nbformat.NotebookNode, track: str, stem: str,
                     then: Callable[[str], list[nbformat.NotebookNode]] = lambda exercise: []
                     ) -> nbformat.NotebookNode:
    """The notebook with the set-up cell first and a check cell after every exercise
    (followed by the cells `then(exercise)` gives, e.g. nbgrader's autograder cell)."""
    cells = [setup_cell(track, stem)]
    for cell in notebook.cells:
        cells.append(cell)
        exercise = notebooks.exercise_name(cell)
        if exercise is not None:
            cells += [check_cell(exercise), *then(exercise)]
    notebook = nbformat.from_dict(notebook)
    notebook.cells = cells
    return notebook
