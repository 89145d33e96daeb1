"""Where things live in the course repository: tracks, scripts, tests."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO_ROOT / "solutions"
EXERCISES = REPO_ROOT / "exercises"
HIDDEN_TESTS = Path(__file__).resolve().parent / "hidden"


def tracks(solutions: Path | None = None) -> list[str]:
    """Names of the tracks that have reference solutions (in `solutions/`), in alphabetical order."""
    solutions = solutions or SOLUTIONS
    return sorted(p.name for p in solutions.iterdir() if p.is_dir() and any(p.glob("[0-9]*.py")))


def solution_scripts(track: str, solutions: Path | None = None) -> list[Path]:
    """The reference scripts of a track, `NN_topic.py`, in course order."""
    solutions = solutions or SOLUTIONS
    folder = solutions / track
    if not folder.is_dir():
        known = ", ".join(tracks(solutions)) or "none"
        raise FileNotFoundError(f"No track named {track!r} (known tracks: {known}).")
    return sorted(folder.glob("[0-9]*.py"))


def script_of_test(test_file: Path) -> tuple[str, str]:
    """`(track, script stem)` checked by a test file named `test_<stem>.py` in a track folder."""
    stem = test_file.stem.removeprefix("test_")
    return test_file.parent.name, stem


def relative(path: Path) -> str:
    """A path as a student would type it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def digest(files: Iterable[Path]) -> str:
    """A hash of these files' names and contents (missing files are skipped)."""
    hasher = hashlib.sha256()
    for file in files:
        if file.is_file():
            hasher.update(str(file).encode() + b"\0" + file.read_bytes())
    return hasher.hexdigest()


@functools.cache
def library_digest() -> str:
    """A hash of the course library and the grader (hidden suites included), computed once per process."""
    return digest(f for folder in ("course", "grader") for f in sorted((REPO_ROOT / folder).rglob("*.py")))
