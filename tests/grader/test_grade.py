"""`grader grade` on a folder of small bad submissions: every failure mode gets its deserved score."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grader import grading, reports
from grader.grading import grade_all
from grader.sandbox import Limits

BAD = Path(__file__).parent / "bad_submissions"
LIMITS = Limits(per_test_s=15, total_s=300, memory_mb=3072)
LANGEVIN = {"mixture_score": 3, "langevin_step": 3, "langevin_sampler": 4}  # points, from the hidden suite

# case: (points on 01_langevin, words in the reason given for langevin_step's first failing test)
pytestmark = pytest.mark.xdist_group("grade")  # the class below is graded once per test session

CASES = {  # the submissions are percent scripts, cells marked `# %%`, as students hand them in
    "good": (10, None),
    "syntax_error": (7, "SyntaxError at line"),
    "missing_function": (7, "`mixture_score` is not defined"),
    "wrong_shape": (8, "shape"),  # it does use its key: 1 of langevin_step's 3 points
    "nan": (7, "NaN"),
    "exception_at_import": (7, "ImportError at line 3"),
    "sys_exit": (7, "SystemExit"),
    "os_exit": (7, "ended the test process"),
    "infinite_loop": (7, "more than 15 s"),
    "memory_hog": (7, "MemoryError"),
    "cheater": (0, None),
    "renamed_file": (0, "01_langevin.py (or .ipynb) is missing"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("submissions")
    shutil.copytree(BAD, submissions, dirs_exist_ok=True)
    out = tmp_path_factory.mktemp("grades")
    grades = grade_all([submissions], out, tracks=["diffusion"], jobs=2, limits=LIMITS, progress=False)
    return {grade.student: grade for grade in grades}, out


def langevin_points(grade: reports.Grade) -> float:
    return sum(row["score"] for row in grade.exercises() if row["script"] == "01_langevin")


def test_the_exercise_points_are_what_these_cases_assume():
    tests = [t for t in grading.hidden_tests("diffusion") if t.script == "01_langevin"]
    assert {name: sum(t.points for t in tests if t.exercise == name) for name in LANGEVIN} == LANGEVIN


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_each_failure_mode_gets_its_deserved_score_and_a_reason(graded, case):
    grades, _ = graded
    expected, reason = CASES[case]
    grade = grades[case]
    assert langevin_points(grade) == expected
    assert grade.score == expected  # the track's other scripts are missing: zero
    if reason is not None:
        messages = [t["message"] for t in grade.tests if t["script"] == "01_langevin" and not t["passed"]]
        assert any(reason in message for message in messages), messages


@pytest.mark.slow
def test_the_cheater_gains_nothing(graded):
    grades, out = graded
    result = json.loads((out / "cheater" / "result.json").read_text())
    assert result["score"] == 0 == json.loads((out / "cheater" / "results.json").read_text())["score"]
    messages = " ".join(t["message"] for t in grades["cheater"].tests)
    assert "replaced part of the grader (grader.checks.assert_close)" in messages


@pytest.mark.slow
def test_reports_for_the_class(graded):
    grades, out = graded
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[0] == "student,diffusion,score,max_score"
    assert sorted(row.split(",")[0] for row in rows[1:]) == sorted(CASES)
    assert "good,10,10,62" in rows
    gradescope = json.loads((out / "nan" / "results.json").read_text())
    assert gradescope["score"] == 7 and len(gradescope["tests"]) == len(grading.hidden_tests("diffusion"))
    assert set(gradescope["tests"][0]) == {"name", "score", "max_score", "output", "visibility"}
    for case in CASES:
        feedback = (out / case / "feedback.md").read_text()
        assert "def test_" not in feedback and "assert_close(" not in feedback  # no hidden test code
    assert "| diffusion/01_langevin: `langevin_step` | 0 / 3 |" in (out / "nan" / "feedback.md").read_text()


@pytest.mark.slow
def test_a_rerun_skips_what_is_done_and_regrades_what_changed(tmp_path):
    submissions = tmp_path / "class"
    for name in ("good", "nan"):
        shutil.copytree(BAD / name, submissions / name)
    out = tmp_path / "grades"
    first = {g.student: g for g in grade_all([submissions], out, tracks=["diffusion"], limits=LIMITS,
                                             progress=False)}
    stamps = {name: (out / name / "result.json").stat().st_mtime_ns for name in first}

    (out / "nan" / "result.json").unlink()  # as if the run had been interrupted before "nan" was saved
    again = {g.student: g for g in grade_all([submissions], out, tracks=["diffusion"], limits=LIMITS,
                                             progress=False)}
    assert (out / "good" / "result.json").stat().st_mtime_ns == stamps["good"]  # skipped
    assert again["nan"].tests == first["nan"].tests  # regraded, to the same result: grades are deterministic

    shutil.copy(BAD / "good" / "01_langevin.py", submissions / "nan" / "01_langevin.py")  # the student fixed it
    fixed = {g.student: g for g in grade_all([submissions], out, tracks=["diffusion"], limits=LIMITS,
                                             progress=False)}
    assert fixed["nan"].score == 10
    assert (out / "good" / "result.json").stat().st_mtime_ns == stamps["good"]


@pytest.mark.slow
def test_ctrl_c_stops_the_children_keeps_what_is_done_and_a_rerun_goes_on(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    submissions = tmp_path / "class"
    for name in ("good", "nan", "wrong_shape"):
        shutil.copytree(BAD / name, submissions / name)
    out = tmp_path / "grades"
    # Python ignores Ctrl-C in a program whose parent ignored it (a pytest-xdist worker does):
    # give the grader the handler a terminal would.
    with_ctrl_c = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "from grader.cli import main; sys.exit(main())")
    command = [sys.executable, "-c", with_ctrl_c, "grade", str(submissions), "--out", str(out),
               "--track", "diffusion", "-j", "1"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (out / "good" / "result.json").exists() and time.monotonic() < deadline:  # the first one is done
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=30)
    assert run.returncode == 130, output
    assert "Interrupted" in output
    graded = {p.parent.name for p in out.glob("*/result.json")}
    assert "good" in graded and graded != {"good", "nan", "wrong_shape"}
    assert not running_children(submissions)  # Ctrl-C stopped them

    stamp = (out / "good" / "result.json").stat().st_mtime_ns
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p.parent.name for p in out.glob("*/result.json")} == {"good", "nan", "wrong_shape"}
    assert (out / "good" / "result.json").stat().st_mtime_ns == stamp
    assert "nan,7,7,62" in (out / "grades.csv").read_text()
    assert not list(out.rglob("*.partial")) and os.path.exists(out / "grades.csv")


def running_children(submissions: Path) -> list[str]:
    """Command lines of sandbox children still grading something in `submissions` (from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # the process ended meanwhile
            continue
        if "grader.sandbox_child" in command and str(submissions) in command:
            found.append(command)
    return found
