"""The checks that nbgrader's autograder cells run, against the notebook's own namespace.

A generated test cell reads

    from grader.notebook_checks import check
    check("diffusion/03_ddpm", "forward_noise", globals())
    ### BEGIN HIDDEN TESTS
    check("diffusion/03_ddpm", "forward_noise", globals(), hidden=True)
    ### END HIDDEN TESTS

The visible part runs the exercise's tests from `exercises/<track>/test_NN_topic.py` and
raises on the first failure, as `pytest` would. The hidden part runs the hidden suite
and returns the points earned, which nbgrader reads as the cell's (partial) score; it
prints the course's short failure messages, never the hidden tests' code.
Nothing is written to stderr: nbgrader gives a cell with stderr output zero points.
"""

from __future__ import annotations

from grader import reports, suites
from grader.pytest_plugin import TestOutcome


class ExerciseNotPassing(Exception):
    """A visible check of the exercise failed (the message says which and why)."""


def check(script: str, exercise: str, namespace: dict, *, hidden: bool = False) -> float | None:
    """Run `exercise`'s visible (or hidden) tests of `script` ("track/NN_topic") on `namespace`."""
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
