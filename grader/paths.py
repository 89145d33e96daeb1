"""Where things live in the course repository: tracks, scripts, tests."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
REPO_ROOT = _PACKAGE.parent
# In a checkout of the course; installed from its wheel (Colab, a hub), there are no
# solutions or hidden tests, and the exercises (with their visible tests) ship in the package.
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file()
SOLUTIONS = REPO_ROOT / "solutions"
EXERCISES = REPO_ROOT / "exercises" if IN_CHECKOUT else _PACKAGE / "exercises"
HIDDEN_TESTS = _PACKAGE / "hidden"
# Caches (compiled programs, the status board): in the checkout, or in the user's home.
STATE = REPO_ROOT / ".grader" if IN_CHECKOUT else Path.home() / ".cache" / "jax-genai-course"

# The tracks in the order the course takes them; every list of tracks follows it.
COURSE_ORDER = ("warmup", "diffusion", "attention", "astro", "protein", "scaling", "numerics")


def has_solutions() -> bool:
    """Whether the reference solutions are here (a checkout), not an installed course."""
    return SOLUTIONS.is_dir()


def tracks(solutions: Path | None = None) -> list[str]:
    """Names of the tracks (with scripts in `solutions/`, else in `exercises/`), in course order."""
    folder = solutions or (SOLUTIONS if has_solutions() else EXERCISES)
    return in_course_order(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("[0-9]*.py")))


def in_course_order(names: Iterable[str]) -> list[str]:
    """Track names, each once, in course order (tracks the course does not know go last, by name)."""
    found = set(names)
    return [t for t in COURSE_ORDER if t in found] + sorted(found - set(COURSE_ORDER))


def course_scripts(track: str) -> list[Path]:
    """A track's scripts in order: the reference's in a checkout, else the exercises' (which
    carry the same exercise cells, as stubs)."""
    return solution_scripts(track, None if has_solutions() else EXERCISES)


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
