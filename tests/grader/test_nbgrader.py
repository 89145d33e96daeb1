"""The nbgrader round trip: build, release, submit, autograde, export, feedback.

One course directory is built per test session; the slow round trip autogrades a class
of submissions (good, empty, one mistake, edited as a percent script, and four broken
ones) in a single `nbgrader autograde` run.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from grader import check_cells, nbgrader_course, notebooks, paths, suites

pytestmark = pytest.mark.xdist_group("nbgrader")  # one course and one class per test session

TRACK = "diffusion"
NBGRADER = str(Path(sys.executable).parent / "nbgrader")
TEST_TIMEOUT_S = 30  # per cell, for the infinite loop below; the course's own default is longer


def nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([NBGRADER, *args], cwd=course, env=env, capture_output=True, text=True, timeout=1800)
    if check and done.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A built course with the track released; a paired .py and notes sit in source/ too."""
    course = tmp_path_factory.mktemp("course")
    nbgrader_course.build(course, [TRACK])
    source = course / "source" / TRACK
    shutil.copy(paths.SOLUTIONS / TRACK / "03_ddpm.py", source / "03_ddpm.py")  # what Jupytext pairing writes
    (source / "answers.txt").write_text("the answers")
    (source / "notes.md").write_text("marking notes")
    nbgrader(course, "generate_assignment", TRACK)
    return course


def load_config(course: Path):
    return PyFileConfigLoader(nbgrader_course.CONFIG_FILE, path=str(course)).load_config()


def code_cells(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def test_source_notebooks_have_a_test_cell_per_exercise(course):
    for script in paths.solution_scripts(TRACK):
        notebook = nbformat.read(course / "source" / TRACK / f"{script.stem}.ipynb", 4)
        points = suites.points_by_exercise(suites.test_file(TRACK, script.stem, "hidden"))
        assert notebook.cells[0].source == check_cells.setup_cell(TRACK, script.stem).source
        for cell, check, following in zip(notebook.cells, notebook.cells[1:], notebook.cells[2:], strict=False):
            exercise = notebooks.exercise_name(cell)
            if exercise is None:
                continue
            assert "### BEGIN SOLUTION" in cell.source
            assert check.source == f'check("{exercise}")'  # the student's own check, kept in the release
            meta = following.metadata["nbgrader"]
            assert (meta["grade_id"], meta["grade"], meta["locked"]) == (f"test_{exercise}", True, True)
            assert meta["points"] == points.pop(exercise) > 0
            assert "### BEGIN HIDDEN TESTS" in following.source and "hidden=True" in following.source
        assert points == {}, f"exercises with hidden tests but no test cell: {points}"
        assert "formats" not in notebook.metadata.get("jupytext", {})


def test_release_holds_only_stubbed_notebooks_without_hidden_tests(course):
    release = course / "release" / TRACK
    scripts = paths.solution_scripts(TRACK)
    assert sorted(p.name for p in release.iterdir()) == sorted(f"{s.stem}.ipynb" for s in scripts)
    for script in scripts:
        text = (release / f"{script.stem}.ipynb").read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "hidden=True"):
            assert marker not in text
        released = nbformat.read(release / f"{script.stem}.ipynb", 4)
        without_tests = [c.source for c in released.cells
                         if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("grade")]
        assert without_tests == code_cells(jupytext.read(paths.EXERCISES / TRACK / script.name))


def test_config_loads_and_avoids_the_known_traps(course):
    config = load_config(course)  # nbgrader would only log an error for a broken config
    assert config.Execute.timeout >= 120
    assert "ClearHiddenTests" in [step.__name__ for step in config.GenerateFeedback.preprocessors]
    assert config.IgnorePattern.enabled


def test_ignore_pattern_drops_what_jax_logs_on_stderr(course):
    from nbgrader.preprocessors import IgnorePattern
    from nbgrader.utils import determine_grade

    cell = nbformat.v4.new_code_cell("check(...)")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "points": 2, "solution": False, "locked": True}
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: Explicitly requested dtype float64 ..."),
        nbformat.v4.new_output("stream", name="stderr",
                               text="W0000 00:00:1700000000.000000 1234 cpu_client.cc:123] slow compile"),
    ]
    assert determine_grade(cell)[0] == 0  # what plain nbgrader does
    cell, _ = IgnorePattern(config=load_config(course)).preprocess_cell(cell, {}, 0)
    assert determine_grade(cell)[0] == 2


def test_nbgrader_validate_exit_status_cannot_be_trusted_but_ours_can(course, tmp_path):
    failing = tmp_path / "failing.ipynb"
    cell = nbformat.v4.new_code_cell("assert 1 + 1 == 3, 'arithmetic is broken'")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test_sum", "locked": True, "points": 1,
                                 "schema_version": 3, "solution": False, "task": False}
    nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), failing)
    assert nbgrader(course, "validate", str(failing)).returncode == 0  # although its test fails
    ours = subprocess.run([sys.executable, "-m", "grader.cli", "nbgrader", "validate", str(failing)],
                          cwd=course, capture_output=True, text=True, timeout=600)
    assert ours.returncode == 1
    assert "arithmetic is broken" in ours.stdout


# --- the round trip ----------------------------------------------------------------------


def release_of(course: Path, name: str):
    return nbformat.read(course / "release" / TRACK / name, 4)


def answered(course: Path, name: str, edit=None):
    """The released notebook with the reference answers; `edit` may change cells in place."""
    notebook = nbgrader_course.answered(release_of(course, name), nbformat.read(course / "source" / TRACK / name, 4))
    if edit:
        edit(notebook.cells)
    return notebook


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def replace_in(exercise: str, old: str, new: str):
    def edit(cells):
        (cell,) = [c for c in cells if grade_id(c) == exercise]
        assert old in cell.source
        cell.source = cell.source.replace(old, new)
    return edit


def edited_as_percent_script(course: Path, name: str):
    """Release → `jupytext --to py` → answers typed into the script → `jupytext --to ipynb`."""
    script = jupytext.writes(release_of(course, name), "py:percent")
    for exercise, answer in {notebooks.exercise_name(c): c.source for c in answered(course, name).cells}.items():
        if exercise is None:
            continue
        (stub,) = [c.source for c in release_of(course, name).cells if notebooks.exercise_name(c) == exercise]
        script = script.replace(stub, answer)
    return jupytext.reads(script, "py:percent")


def submit(course: Path, student: str, files: dict[str, object]) -> None:
    folder = course / "submitted" / student / TRACK
    folder.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, str):
            (folder / name).write_text(content)
        else:
            nbformat.write(content, folder / name)
    (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")


def insert_cell(source: str, after: str):
    def edit(cells):
        index = next(i for i, c in enumerate(cells) if grade_id(c) == after)
        cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return edit


WRONG_EXERCISE, WRONG_NOTEBOOK = "reverse_step", "03_ddpm.ipynb"  # ddpm_sample, graded next, calls it


@pytest.fixture(scope="module")
def graded(course) -> dict:
    """Submit a class, autograde it in one run, export the grades and generate feedback."""
    names = [f"{script.stem}.ipynb" for script in paths.solution_scripts(TRACK)]
    everything = {name: answered(course, name) for name in names}
    # Two notebooks are enough here: the other two would be graded exactly as the reference's.
    one_wrong = {}
    one_wrong[WRONG_NOTEBOOK] = answered(course, WRONG_NOTEBOOK, replace_in(
        WRONG_EXERCISE, "jnp.where(t > 0, jnp.sqrt(beta), 0.0) * noise", "jnp.where(t > 0, beta, 0.0) * noise"))
    # A correct answer that makes JAX warn on stderr when the tests call it: still full marks.
    one_wrong["01_langevin.ipynb"] = answered(course, "01_langevin.ipynb", replace_in(
        "mixture_score", "return jax.grad", "jnp.zeros(2, dtype=jnp.float64)\n    return jax.grad"))

    def drop_cells(cells):
        cells[:] = [c for c in cells if grade_id(c) not in ("test_mixture_score", "langevin_step")]

    submit(course, "reference", everything)
    submit(course, "untouched", {name: release_of(course, name) for name in names})
    submit(course, "one-wrong", one_wrong)
    submit(course, "percent-script", {"03_ddpm.ipynb": edited_as_percent_script(course, "03_ddpm.ipynb")})
    submit(course, "infinite-loop", {"01_langevin.ipynb": answered(
        course, "01_langevin.ipynb", insert_cell("while True:\n    pass", after="test_langevin_step"))})
    submit(course, "kills-kernel", {"01_langevin.ipynb": answered(course, "01_langevin.ipynb", insert_cell(
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", after="test_mixture_score"))})
    submit(course, "deleted-cells", {"01_langevin.ipynb": answered(course, "01_langevin.ipynb", drop_cells)})
    submit(course, "not-json", {"01_langevin.ipynb": '{"cells": [ this is not json',
                                "02_score_matching.ipynb": everything["02_score_matching.ipynb"]})

    autograde = nbgrader(course, "autograde", TRACK, f"--Execute.timeout={TEST_TIMEOUT_S}", check=False)
    nbgrader(course, "export", "--to", "grades.csv")
    nbgrader(course, "generate_feedback", TRACK)
    with open(course / "grades.csv") as file:
        totals = {row["student_id"]: float(row["score"]) for row in csv.DictReader(file)}
    return {"totals": totals, "notebook_scores": notebook_scores(course), "log": autograde.stderr}


def notebook_scores(course: Path) -> dict[tuple[str, str], float]:
    """(student, notebook) → score, from the gradebook."""
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in gradebook.students:
            for submission in gradebook.find_submission(TRACK, student.id).notebooks:
                scores[student.id, submission.name] = submission.score
    return scores


def exercise_points() -> dict[str, float]:
    return {exercise: points for script in paths.solution_scripts(TRACK)
            for exercise, points in suites.points_by_exercise(suites.test_file(TRACK, script.stem, "hidden")).items()}


@pytest.mark.slow
def test_scores_are_full_zero_and_full_minus_the_wrong_exercise(graded):
    full = sum(exercise_points().values())
    totals = graded["totals"]
    assert totals["reference"] == full
    assert totals["untouched"] == 0
    scores = graded["notebook_scores"]
    wrong_notebook = WRONG_NOTEBOOK.removesuffix(".ipynb")
    wrong_points = exercise_points()[WRONG_EXERCISE]
    assert scores["one-wrong", wrong_notebook] == scores["reference", wrong_notebook] - wrong_points
    assert scores["one-wrong", "01_langevin"] == scores["reference", "01_langevin"] > 0  # JAX's warning cost nothing


@pytest.mark.slow
def test_the_reference_notebooks_run_top_to_bottom_without_errors(course, graded):
    for script in paths.solution_scripts(TRACK):
        notebook = nbformat.read(course / "autograded" / "reference" / TRACK / f"{script.stem}.ipynb", 4)
        errors = [(cell.source.splitlines()[0], output.get("ename"))
                  for cell in notebook.cells if cell.cell_type == "code"
                  for output in cell.outputs if output.output_type == "error"]
        assert errors == [], f"{script.stem}: {errors}"
        assert all(cell.execution_count for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.slow
def test_a_notebook_edited_as_a_percent_script_is_graded_the_same(graded):
    scores = graded["notebook_scores"]
    assert scores["percent-script", "03_ddpm"] == scores["reference", "03_ddpm"] > 0


@pytest.mark.slow
def test_bad_submissions_cost_only_their_own_points(graded):
    points, scores = exercise_points(), graded["notebook_scores"]
    langevin = points["mixture_score"] + points["langevin_step"] + points["langevin_sampler"]
    assert scores["infinite-loop", "01_langevin"] == langevin  # the loop is interrupted, the rest runs
    assert scores["kills-kernel", "01_langevin"] == points["mixture_score"]  # tests after the kill: zero
    assert scores["deleted-cells", "01_langevin"] == langevin - points["langevin_step"]  # test cell put back
    assert scores["not-json", "01_langevin"] == 0
    assert scores["not-json", "02_score_matching"] == scores["reference", "02_score_matching"] > 0
    assert graded["totals"]["reference"] == sum(points.values())  # nobody else lost anything


@pytest.mark.slow
def test_feedback_has_no_hidden_tests(course, graded):
    pages = list((course / "feedback").rglob("*.html"))
    assert len(pages) >= 3 * len(paths.solution_scripts(TRACK))
    for page in pages:
        text = page.read_text()
        for hidden in ("hidden=True", "HIDDEN TESTS", "def test_", "assert_close("):
            assert hidden not in text, f"{page.name} shows hidden test text {hidden!r}"
    reference_page = (course / "feedback" / "reference" / TRACK / "03_ddpm.html").read_text()
    assert "passed" in reference_page  # the checks' own report is kept


def test_an_unreadable_notebook_is_graded_as_an_empty_one(tmp_path):
    from grader.nbgrader_extensions import TolerantNotebookExporter

    broken = tmp_path / "01_langevin.ipynb"
    broken.write_text('{"cells": [ this is not json')
    output, _ = TolerantNotebookExporter().from_filename(str(broken))
    (cell,) = nbformat.reads(output, 4).cells
    assert "could not be read" in cell.source and cell.cell_type == "markdown"
