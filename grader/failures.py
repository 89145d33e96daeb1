"""What a student reads when a check fails: a few lines that say what went wrong, not a traceback.

Used where the exception happens: in the test process for the visible tests, and in the
sandboxed process for the hidden ones (whose message then travels to the grader).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from grader import paths
from grader.loader import PROBLEMS


class CheckFailed(AssertionError):
    """A check on the student's answer failed; the message says what to fix."""


MAX_MESSAGE = 2000  # characters of an exception's text that are kept


@dataclass(frozen=True)
class Failure:
    """A short report (None: only a full traceback explains it), whether an untouched stub caused it, its type."""

    short: str | None
    todo: bool
    typename: str


class SubmissionFailed(Exception):
    """The student's code failed in its sandboxed process; `failure` is the report made there.

    `details` is the full traceback, for the grader's log: students see only `failure.short`.
    """

    def __init__(self, failure: Failure, details: str = ""):
        super().__init__(failure.short or f"The check failed with {failure.typename}.")
        self.failure, self.details = failure, details


def in_submission(frame: FrameType) -> bool:
    """A frame of student code: a loaded script, or a notebook's own cells."""
    name = frame.f_globals.get("__name__", "")
    return name.startswith("submission_") or name == "__main__"


def _where(frame: FrameType, lineno: int) -> str:
    path = Path(frame.f_code.co_filename)
    if path.parent.name.startswith("ipykernel_"):
        return f"your notebook cell, line {lineno}"
    return f"{paths.relative(path)}:{lineno}"


def clipped(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit] + " [...]"


def describe(error: BaseException) -> Failure:
    """The course's short report of `error`, judged from the frames of its traceback."""
    if isinstance(error, SubmissionFailed):
        return error.failure
    typename = type(error).__name__
    if isinstance(error, CheckFailed):
        return Failure(clipped(str(error)), False, typename)
    student = [(frame, lineno) for frame, lineno in traceback.walk_tb(error.__traceback__) if in_submission(frame)]
    if not student:
        return Failure(None, False, typename)
    frame, lineno = student[-1]
    if isinstance(error, NotImplementedError):
        return Failure(f"TODO ({_where(frame, lineno)}): {clipped(str(error), 300)}", True, typename)
    lines = [f"Your code raised {typename}: {clipped(str(error), 500)}"]
    for each, number in student[-3:]:
        statement = traceback.FrameSummary(each.f_code.co_filename, number, each.f_code.co_name).line or ""
        lines.append(f"  {_where(each, number)} in {each.f_code.co_name}: {statement.strip()}")
    problems = frame.f_globals.get(PROBLEMS)
    if problems:  # e.g. a failed import is why a name is undefined
        lines.append("Loading the script went wrong here, which may be why:")
        lines += [f"  {clipped(str(problem), 300)}" for problem in problems[:10]]
    return Failure("\n".join(lines), False, typename)
