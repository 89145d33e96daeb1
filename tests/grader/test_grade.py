"""`grader grade` on a class of small bad submissions: every failure mode and trick gets its deserved score."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from grader import grading, paths, remote, reports
from grader.grading import grade_all
from grader.remote import Limits

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
    "renamed_file": (0, "01_langevin.py (or .ipynb) is missing from this submission"),
    # Tricks: each stands for a class of attacks on the grade; the score is what the honest content earns.
    "forges_results": (0, "differ from what was expected"),  # writes to every descriptor, rewrites memory
    "patches_the_checks": (0, "differ from what was expected"),  # replaces code objects of the comparisons
    "reads_the_reference": (0, "differ from what was expected"),  # solutions/ on disk, frames, gc, the loader
    "attacks_classmates": (3, "differ from what was expected"),  # signals everyone, lingers to rewrite grades
    "writes_the_checkout": (0, "differ from what was expected"),  # rewrites the hidden tests and site-packages
    # Honest work that must not lose points to the way it was handed in.
    "keyboard_interrupt_at_import": (10, None),
    "exit_at_import": (10, None),
    "enables_x64": (10, None),  # the reference's answers, filled in for other exercises, still work
    "forks_children": (10, None),  # a child that holds the channel open neither stalls grading nor survives it
    "newer_broken_notebook": (10, None),  # made by the fixture: an unreadable notebook newer than a good .py
    "empty": (0, "01_langevin.py (or .ipynb) is missing from this submission"),  # made by the fixture
}
COPIES = ("wrong_shape_again", "wrong_shape_once_more")  # made by the fixture: the same work, graded 3 times


def checkout_digest() -> str:
    """The grader, the library, the reference and the environment's JAX: what student code must not change."""
    import jax

    files = sorted(f for folder in ("grader", "course", "solutions") for f in (paths.REPO_ROOT / folder).rglob("*.py"))
    return paths.digest([*files, Path(jax.__file__)])


def lingering_processes() -> list[str]:
    """Processes named as the `forks_children` submission names its child (from /proc)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "lingering-child":
                found.append(comm.parent.name)
        except OSError:  # the process ended meanwhile
            continue
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("submissions")
    shutil.copytree(BAD, submissions, dirs_exist_ok=True)
    (submissions / "empty").mkdir()
    shutil.copytree(BAD / "good", submissions / "newer_broken_notebook")
    notebook = submissions / "newer_broken_notebook" / "01_langevin.ipynb"
    notebook.write_text('{"cells": [')  # cut off mid-save
    later = (submissions / "newer_broken_notebook" / "01_langevin.py").stat().st_mtime + 60
    os.utime(notebook, (later, later))
    for copy in COPIES:
        shutil.copytree(BAD / "wrong_shape", submissions / copy)
    out = tmp_path_factory.mktemp("grades")
    before = checkout_digest()
    grades = grade_all([submissions], out, tracks=["diffusion"], jobs=2, limits=LIMITS, progress=False)
    return {grade.student: grade for grade in grades}, out, before


def langevin_points(grade: reports.Grade) -> float:
    return sum(row["score"] for row in grade.exercises() if row["script"] == "01_langevin")


def test_the_exercise_points_are_what_these_cases_assume():
    tests = [t for t in grading.hidden_tests("diffusion") if t.script == "01_langevin"]
    assert {name: sum(t.points for t in tests if t.exercise == name) for name in LANGEVIN} == LANGEVIN


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_each_failure_mode_gets_its_deserved_score_and_a_reason(graded, case):
    grades, *_ = graded
    expected, reason = CASES[case]
    grade = grades[case]
    assert langevin_points(grade) == expected
    assert grade.score == expected  # the track's other scripts are missing: zero
    if reason is not None:
        messages = [t["message"] for t in grade.tests if t["script"] == "01_langevin" and not t["passed"]]
        assert any(reason in message for message in messages), messages


@pytest.mark.slow
def test_the_cheater_gains_nothing(graded):
    grades, out, _ = graded
    result = json.loads((out / "cheater" / "result.json").read_text())
    assert result["score"] == 0 == json.loads((out / "cheater" / "results.json").read_text())["score"]
    assert not list(out.rglob("result.json.*")) and len(list(out.glob("*/result.json"))) == len(CASES) + len(COPIES)


def test_the_timings_split_student_code_into_compiling_and_running(graded):
    _, out, _ = graded
    timing = json.loads((out / "good" / "result.json").read_text())["timing"]
    compiling, running = timing[remote.STUDENT_COMPILING], timing[remote.STUDENT_RUNNING]
    assert compiling > 0.1 and running > 0  # the good answers compile: the sandbox reported it
    assert timing["compiling the reference (trusted)"] > 0


@pytest.mark.slow
def test_student_code_changes_nothing_outside_its_sandbox(graded):
    grades, out, before = graded
    assert checkout_digest() == before  # the hidden tests, the reference, the library and JAX are as they were
    assert not lingering_processes()  # everything a submission started ended with it
    rows = (out / "grades.csv").read_text().splitlines()
    assert len(rows) == 1 + len(CASES) + len(COPIES) and "good,10,10,62" in rows  # no one was dropped or rewritten


@pytest.mark.slow
def test_grades_are_deterministic(graded):
    grades, *_ = graded
    for copy in COPIES:
        assert grades[copy].tests == grades["wrong_shape"].tests


@pytest.mark.slow
def test_reports_for_the_class(graded):
    grades, out, _ = graded
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[0] == "student,diffusion,score,max_score"
    assert sorted(row.split(",")[0] for row in rows[1:]) == sorted([*CASES, *COPIES])
    assert "good,10,10,62" in rows
    gradescope = json.loads((out / "nan" / "results.json").read_text())
    assert gradescope["score"] == 7 and len(gradescope["tests"]) == len(grading.hidden_tests("diffusion"))
    assert set(gradescope["tests"][0]) == {"name", "score", "max_score", "output", "visibility"}
    for case in [*CASES, *COPIES]:
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

    # A forged result: the good one, its seal kept, renamed to "nan" with nan's fingerprint. It is not trusted.
    forged = json.loads((out / "good" / "result.json").read_text())
    forged.update(student="nan", fingerprint=first["nan"].fingerprint)
    (out / "nan" / "result.json").write_text(json.dumps(forged))
    again = {g.student: g for g in grade_all([submissions], out, tracks=["diffusion"], limits=LIMITS,
                                             progress=False)}
    assert (out / "good" / "result.json").stat().st_mtime_ns == stamps["good"]  # skipped
    assert again["nan"].tests == first["nan"].tests  # regraded, to the same result: grades are deterministic
    assert "nan,7,7,62" in (out / "grades.csv").read_text()

    shutil.copy(BAD / "good" / "01_langevin.py", submissions / "nan" / "01_langevin.py")  # the student fixed it
    fixed = {g.student: g for g in grade_all([submissions], out, tracks=["diffusion"], limits=LIMITS,
                                             progress=False)}
    assert fixed["nan"].score == 10
    assert (out / "good" / "result.json").stat().st_mtime_ns == stamps["good"]


@pytest.mark.slow
def test_ctrl_c_stops_the_children_keeps_what_is_done_and_a_rerun_goes_on(tmp_path, grader_cli_with_ctrl_c):
    import os
    import signal
    import subprocess
    import time

    submissions = tmp_path / "class"
    for name in ("good", "nan", "wrong_shape"):
        shutil.copytree(BAD / name, submissions / name)
    out = tmp_path / "grades"
    command = [*grader_cli_with_ctrl_c, "grade", str(submissions), "--out", str(out),
               "--track", "diffusion", "-j", "1"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (out / "good" / "result.json").exists() and time.monotonic() < deadline:  # the first one is done
        time.sleep(0.2)
    started = descendants(run.pid)  # the workers, their fork servers and the sandboxes running now
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=30)
    assert run.returncode == 130, output
    assert "Interrupted" in output
    graded = {p.parent.name for p in out.glob("*/result.json")}
    assert "good" in graded and graded != {"good", "nan", "wrong_shape"}
    assert started and not alive_after(started, seconds=10)  # Ctrl-C stopped them all

    stamp = (out / "good" / "result.json").stat().st_mtime_ns
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p.parent.name for p in out.glob("*/result.json")} == {"good", "nan", "wrong_shape"}
    assert (out / "good" / "result.json").stat().st_mtime_ns == stamp
    assert "nan,7,7,62" in (out / "grades.csv").read_text()
    assert not list(out.rglob("*.partial")) and os.path.exists(out / "grades.csv")


def descendants(pid: int) -> set[tuple[int, str]]:
    """Every process below `pid`, as (pid, start time) from /proc."""
    parents, started = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # the process ended meanwhile
            continue
        parents[int(stat.parent.name)], started[int(stat.parent.name)] = int(fields[1]), fields[19]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= {(child, started[child]) for child in frontier}
    return found


def alive_after(processes: set[tuple[int, str]], seconds: float) -> set[int]:
    """Which of these processes still run after up to `seconds` (multiprocessing's resource
    tracker ends on its own just after the grader does)."""
    import time

    deadline = time.monotonic() + seconds
    while (living := alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return living


def alive(processes: set[tuple[int, str]]) -> set[int]:
    """Which of these processes still run (not ended, not zombies, not a new process under a reused pid)."""
    living = set()
    for pid, start in processes:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and fields[19] == start:
            living.add(pid)
    return living
