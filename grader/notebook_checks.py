"""Checks run in a notebook's kernel, against the notebook's own globals.

The student's check cells (written by `grader sync` after every exercise) call the
`check` that the notebook's set-up cell makes:

    check = exercise_checks("diffusion/03_ddpm", globals())
    ...
    check("forward_noise")   # ✓ with the count, or what to do, or the first failing check

It runs only the exercise's *visible* tests and prints what `grader check` prints. While
nbgrader autogrades or validates (`NBGRADER_EXECUTION` set), it runs nothing: nbgrader's own
test cells score the exercise.

nbgrader's autograder cells (written by `grader nbgrader build`) read

    from grader.notebook_checks import run_checks
    run_checks("diffusion/03_ddpm", "forward_noise", globals())
    ### BEGIN HIDDEN TESTS
    run_checks("diffusion/03_ddpm", "forward_noise", globals(), hidden=True)
    ### END HIDDEN TESTS

The visible part runs the exercise's tests from `exercises/<track>/test_NN_topic.py` and
raises on the first failure, as `pytest` would. The hidden part runs the hidden suite
and returns the points earned, which nbgrader reads as the cell's (partial) score; it
prints the course's short failure messages, never the hidden tests' code.
Nothing is written to stderr: nbgrader gives a cell with stderr output zero points.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grader import paths, percent

if TYPE_CHECKING:  # the rest is imported when a check runs: a script that imports this stays quick to load
    from grader.pytest_plugin import TestOutcome


class ExerciseNotPassing(Exception):
    """A visible check of the exercise failed (the message says which and why)."""


def run_checks(script: str, exercise: str, namespace: dict, *, hidden: bool = False) -> float | None:
    """Run `exercise`'s visible (or hidden) tests of `script` ("track/NN_topic") on `namespace`."""
    from grader import suites

    track, stem = script.split("/")
    file = suites.test_file(track, stem, "hidden" if hidden else "visible")
    outcomes = suites.run(file, exercise, namespace)
    if hidden:
        return _score(exercise, outcomes)
    failed = [outcome for outcome in outcomes if not outcome.passed]
    if failed:
        details = "\n\n".join(f"{outcome.name}:\n{outcome.message}" for outcome in failed)
        raise ExerciseNotPassing(f"{len(failed)} of {len(outcomes)} checks of `{exercise}` failed.\n\n{details}")
    print(f"{exercise}: all {len(outcomes)} visible checks pass.")
    return None


def _score(exercise: str, outcomes: list[TestOutcome]) -> float:
    from grader import reports, suites

    if not outcomes:
        raise suites.SuiteError(f"The hidden suite has no tests for `{exercise}`: rebuild the course.")
    earned = float(sum(outcome.points for outcome in outcomes if outcome.passed))
    total = sum(outcome.points for outcome in outcomes)
    for outcome in outcomes:
        mark = "passed" if outcome.passed else "FAILED"
        print(f"  [{mark}] {outcome.name} ({_points(outcome.points)})")
        if not outcome.passed:
            message = reports.safe_message(outcome.message, brief=outcome.brief, error=outcome.error)
            print("    " + message.replace("\n", "\n    "))
    print(f"{exercise}: {earned:g} of {_points(total)}")
    return earned


def _points(n: float) -> str:
    return f"{n:g} point" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class CheckResult:
    """What a check cell shows: one line per exercise and what to do next."""

    exercise: str
    passed: bool
    lines: tuple[str, ...]

    def __repr__(self) -> str:
        return "\n".join(self.lines)


class ExerciseChecks:
    """`check("name")`: an exercise's visible checks, on the notebook's globals, in this kernel.

    Exercises of the notebook that are not done yet are stood in for by the reference (in a
    checkout); an installed course has none, so the result says which to do first.
    """

    def __init__(self, script: str, namespace: dict):
        track, _, stem = script.partition("/")
        if track not in paths.tracks() or stem not in {s.stem for s in paths.course_scripts(track)}:
            raise ValueError(f"The course has no notebook {script!r}: this set-up cell belongs to another "
                             "version of the course. Get the notebook again (`grader sync` in a checkout).")
        self.track, self.stem, self.namespace = track, stem, namespace
        script_file = next(s for s in paths.course_scripts(track) if s.stem == stem)
        self.exercises = {e.name: e.names for e in percent.exercises(script_file)}

    def __call__(self, exercise: str) -> CheckResult:
        if exercise not in self.exercises:
            raise ValueError(f"{self.track}/{self.stem} has no exercise {exercise!r}; "
                             f"it has: {', '.join(self.exercises)}.")
        running = os.environ.get("NBGRADER_EXECUTION")  # nbgrader autograding or validating
        if running:
            return CheckResult(exercise, True, (f"  {exercise}: not checked here while nbgrader {running}s "
                                                "(its test cells score this exercise).",))
        missing = [name for name in self.exercises[exercise] if name not in self.namespace]
        if missing:
            lines = (f"· {exercise}: `{'`, `'.join(missing)}` is not defined yet: run the exercise's cell "
                     "(and the cells above it) first, then this one.",)
            return CheckResult(exercise, False, lines)
        from grader import checking, suites

        outcomes = suites.run(suites.test_file(self.track, self.stem, "visible"), exercise, self.namespace)
        records = [{"passed": o.passed, "todo": o.todo, "message": o.message} for o in outcomes]
        row = checking._summarise_one(self.track, self.stem, exercise, records, where="in its cell above")
        return CheckResult(exercise, row.state == "passing", tuple(checking.describe(row, exercise)))


def exercise_checks(script: str, namespace: dict) -> ExerciseChecks:
    """The `check` of a notebook ("track/NN_topic"), run against `namespace` (its `globals()`)."""
    return ExerciseChecks(script, namespace)
