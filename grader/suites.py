"""Run one script's visible or hidden tests inside this process (for notebooks and nbgrader).

The same test functions serve `pytest exercises/<track>`, `grader` and nbgrader's
autograder cells: here they run through `pytest.main`, optionally against the live
namespace of a notebook instead of a script on disk.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Literal

import pytest

from grader import paths
from grader.pytest_plugin import NOTEBOOK_NAMESPACE, Recorder, TestOutcome, exercise_of, points_of

Suite = Literal["visible", "hidden"]

PYTEST_ARGS = (
    "-q", "--no-header", "-p", "no:cacheprovider", "-p", "no:warnings",
    "-p", "no:unraisableexception", "-p", "no:threadexception",  # each runs gc.collect(): 0.3 s a call
    "-o", "addopts=", "--import-mode=importlib", f"--rootdir={paths.REPO_ROOT}",
)


def test_file(track: str, stem: str, suite: Suite) -> Path:
    """`exercises/<track>/test_<stem>.py` (visible) or `grader/hidden/<track>/test_<stem>.py` (hidden)."""
    folder = paths.EXERCISES if suite == "visible" else paths.HIDDEN_TESTS
    return folder / track / f"test_{stem}.py"


class SuiteError(RuntimeError):
    """pytest could not run the suite at all (interrupted, or the suite itself is broken)."""


class _Settings:
    """Hands the notebook's namespace to the `submission` fixture, and notes collected tests."""

    def __init__(self, namespace: dict | None):
        self.namespace = namespace
        self.collected: list[pytest.Item] = []

    def pytest_configure(self, config: pytest.Config) -> None:
        if self.namespace is not None:
            config.stash[NOTEBOOK_NAMESPACE] = self.namespace

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = list(session.items)


def _pytest(file: Path, args: list[str], namespace: dict | None = None) -> tuple[Recorder, _Settings]:
    recorder, settings = Recorder(None), _Settings(namespace)
    printed = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        warnings.simplefilter("ignore")  # a warning on stderr would cost an nbgrader cell its points
        code = pytest.main([str(file), *PYTEST_ARGS, *args], plugins=[recorder, settings])
    if code == pytest.ExitCode.INTERRUPTED:
        raise SuiteError(f"The tests of {file.name} were interrupted (time limit reached?).")
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise SuiteError(f"pytest could not run {paths.relative(file)} (exit code {int(code)}):\n{printed.getvalue()}")
    return recorder, settings


def collect(file: Path) -> list[pytest.Item]:
    """The tests of a file (one per parametrised case), without running them."""
    _, settings = _pytest(file, ["--collect-only"])
    return settings.collected


def points_by_exercise(file: Path) -> dict[str, float]:
    """Each exercise's total points in a test file (parametrised tests count once per case)."""
    totals: dict[str, float] = {}
    for item in collect(file):
        if exercise_of(item) is not None:
            totals[exercise_of(item)] = totals.get(exercise_of(item), 0.0) + points_of(item)
    return totals


def run(file: Path, exercise: str, namespace: dict | None = None) -> list[TestOutcome]:
    """Run the tests of one exercise, against `namespace` (a notebook's globals) if given."""
    recorder, _ = _pytest(file, ["--exercise", exercise], namespace)
    return [TestOutcome.from_record(record) for record in recorder.results.values()]
