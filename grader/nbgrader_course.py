"""`grader nbgrader build`: an nbgrader course directory made from `solutions/` and the hidden suites.

Each reference script becomes `source/<track>/<NN_topic>.ipynb`: its solution cells keep
nbgrader's markers, and after each one comes a locked autograder cell worth the points of
that exercise's hidden tests. The cell imports its checks from the installed `grader`
package (`grader.notebook_checks`), so nothing in `source/` but the notebooks reaches
students. `nbgrader_config.py` sets up nbgrader to avoid its known traps (see CONFIG).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from grader import check_cells, notebooks, paths, suites

CONFIG_FILE = "nbgrader_config.py"

CONFIG = '''\
"""nbgrader settings for this course (written by `grader nbgrader build`, yours to edit).

`grader nbgrader build` never overwrites this file once it exists; delete it to get the
current defaults back.
"""

import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import Autograde, GenerateAssignment
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions, Execute, GetGrades, OverwriteCells

from grader.nbgrader_extensions import KeepGoingExecute, RestoreTestCells, ShortTestErrors, TolerantNotebookExporter
from grader.sync import StubOutSolutions


def replaced(converter, trait, old, new):
    """nbgrader's default list of preprocessors for `converter.trait`, with `old` swapped for `new`."""
    return [new if step is old else step for step in converter.class_traits()[trait].default()]


c = get_config()  # noqa: F821 (provided by nbgrader)
c.CourseDirectory.course_id = {course_id!r}

# generate_assignment copies every other file of source/<assignment>/ into release/: keep
# out paired scripts (Jupytext may write a .py with the answers next to a source
# notebook), notes and hidden files. The notebooks get everything else from `course`.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",  # nbgrader's defaults
    "*.py", "*.md", "*.txt", "*.html", "*.pdf", "*solution*", "*answer*", ".*",
]

# Stubs name their exercise, as in the course's exercises/ folder.
c.GenerateAssignment.preprocessors = replaced(GenerateAssignment, "preprocessors", ClearSolutions, StubOutSolutions)

# One bad notebook costs only its own points: plain nbgrader drops the student's whole
# assignment when a notebook is not valid JSON or kills its kernel, and scores a deleted
# test cell as zero. (See grader/nbgrader_extensions.py.)
c.Autograde.exporter_class = TolerantNotebookExporter
c.Autograde.sanitize_preprocessors = replaced(Autograde, "sanitize_preprocessors", OverwriteCells, RestoreTestCells)
c.Autograde.autograde_preprocessors = replaced(Autograde, "autograde_preprocessors", Execute, KeepGoingExecute)

# nbgrader gives 0 points to a test cell with any stderr output. The checks keep their own
# warnings off stderr; this drops what JAX, XLA or a library logs there anyway.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(?m)Warning|WARNING|^[WIE]\\d{{4}} "

# Compiling the checks with jit takes seconds; nbgrader's default of 30 s per cell is too short.
c.Execute.timeout = {timeout}

# Feedback shows the test cells: remove their hidden part, as in the released notebooks,
# and shorten their errors to the message (a traceback quotes the cell's code).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, ShortTestErrors, CSSHTMLHeaderPreprocessor]

# Kernels started by nbgrader inherit these. Demos train for a few steps only (grades come
# from the test cells), plots draw off-screen, and compiled programs are cached on disk
# and shared by every submission.
os.environ.setdefault("COURSE_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
course_dir = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(course_dir, ".jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
'''

CELL_TIMEOUT_S = 300
COURSE_ID = "jax-genai-for-science"


def test_cell(track: str, stem: str, exercise: str, points: float) -> nbformat.NotebookNode:
    """The locked autograder cell of one exercise: visible checks, then the hidden ones."""
    script = f"{track}/{stem}"
    source = "\n".join([
        f"# Checks for `{exercise}` ({points:g} points). Run this cell to test your answer.",
        "from grader.notebook_checks import run_checks",
        "",
        f"run_checks({script!r}, {exercise!r}, globals())",
        "### BEGIN HIDDEN TESTS",
        f"run_checks({script!r}, {exercise!r}, globals(), hidden=True)",
        "### END HIDDEN TESTS",
    ])
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {
        "grade": True, "grade_id": f"test_{exercise}", "locked": True, "points": points,
        "schema_version": 3, "solution": False, "task": False,
    }
    return cell


def source_notebook(script: Path) -> nbformat.NotebookNode:
    """The nbgrader source notebook of a reference script: after each solution cell, the
    student's check cell (`grader.check_cells`) and a locked autograder cell."""
    track, stem = script.parent.name, script.stem
    points = suites.points_by_exercise(suites.test_file(track, stem, "hidden"))

    def autograder_cell(exercise: str) -> list[nbformat.NotebookNode]:
        if not points.get(exercise):
            raise ValueError(f"{paths.relative(script)}: exercise {exercise!r} has no hidden tests with points.")
        return [test_cell(track, stem, exercise, points[exercise])]

    notebook = check_cells.with_check_cells(notebooks.read_notebook(script), track, stem, then=autograder_cell)
    notebook.metadata.get("jupytext", {}).pop("formats", None)  # no paired .py next to the notebook
    return notebook


def build(course: Path, tracks: list[str]) -> list[str]:
    """Write `source/<track>/*.ipynb` (and `nbgrader_config.py` if absent); one line per file."""
    lines = []
    config = course / CONFIG_FILE
    if config.exists():
        lines.append(f"kept: {config} (delete it to get the current defaults)")
    else:
        course.mkdir(parents=True, exist_ok=True)
        config.write_text(CONFIG.format(course_id=COURSE_ID, timeout=CELL_TIMEOUT_S), encoding="utf-8")
        lines.append(f"wrote: {config}")
    for track in tracks:
        folder = course / "source" / track
        folder.mkdir(parents=True, exist_ok=True)
        for script in paths.solution_scripts(track):
            target = folder / f"{script.stem}.ipynb"
            target.write_text(notebooks.to_ipynb(source_notebook(script)), encoding="utf-8")
            lines.append(f"wrote: {target}")
    return lines


def validate(notebook: Path) -> list[str]:
    """Run a notebook as `nbgrader validate` does; one line per problem (empty when it passes).

    Unlike `nbgrader validate`, whose exit status is 0 even when tests fail, callers can
    act on the result.
    """
    import html
    import os

    from nbgrader.validator import Validator
    from traitlets.config import Config

    if not notebook.is_file():
        raise FileNotFoundError(f"{notebook}: no such notebook.")
    os.environ.setdefault("COURSE_QUICK", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    config = Config()
    config.Execute.timeout = CELL_TIMEOUT_S
    results = Validator(config=config).validate(str(notebook))
    problems = [f"{notebook}: a read-only cell was changed:\n{entry['source']}"
                for entry in results.get("changed", []) + results.get("type_changed", [])]
    problems += [f"{notebook}: failed\n{entry['source']}\n{html.unescape(entry['error'])}"
                 for entry in results.get("failed", [])]
    return problems


def answered(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A released notebook with the reference answers filled in (to rehearse grading)."""
    answers = {notebooks.exercise_name(cell): cell.source for cell in source.cells if notebooks.exercise_name(cell)}
    filled = nbformat.from_dict(release)
    for cell in filled.cells:
        if notebooks.exercise_name(cell) in answers:
            cell.source = answers[notebooks.exercise_name(cell)]
    return filled
