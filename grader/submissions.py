"""What a test sees of a student's script: its definitions, other exercises filled from the reference."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from grader import paths, percent
from grader.failures import CheckFailed
from grader.loader import LoadedScript, load_script, read_source, resolve_source

NAMED_TARGETS = {"exercises": paths.EXERCISES, "solutions": paths.SOLUTIONS}


class MissingDefinition(CheckFailed):
    """The script does not define a name the tests need."""


class Namespace:
    """Attribute access to a student's definitions, with a helpful error for a missing name."""

    is_reference = False

    def __init__(self, values: Mapping[str, Any], where: str, problems: list[str] | None = None):
        self._values, self._where, self._problems = values, where, problems or []

    def evaluate(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)`; graded, it runs in the student's sandboxed process instead (`grader.remote`)."""
        return fn(*args, **kwargs)

    @classmethod
    def of_script(cls, loaded: LoadedScript) -> Namespace:
        return cls(loaded.module.__dict__, paths.relative(loaded.path), loaded.problems)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            lines = [f"`{name}` is not defined in {self._where}."]
            if self._problems:
                lines.append("Loading the script went wrong here:")
                lines += [f"  {problem}" for problem in self._problems]
            else:
                lines.append(f"Did you run, rename or delete the cell that defines `{name}`?")
            raise MissingDefinition("\n".join(lines)) from None


class MissingScript(CheckFailed, FileNotFoundError):
    """A script the tests need is not in the folder being tested."""


def target_root(target: str) -> Path:
    """`exercises`, `solutions`, or a folder laid out like `exercises/`."""
    if target in NAMED_TARGETS:
        return NAMED_TARGETS[target]
    root = Path(target).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"--target {target}: no such folder. Give `exercises`, `solutions`, or a folder "
            "laid out like exercises/ (TRACK/NN_topic.py or .ipynb)."
        )
    return root.resolve()


def script_path(root: Path, track: str, stem: str) -> Path:
    """Where `<track>/<stem>` lives under a target: `root/track/stem.py` or `root/stem.py`."""
    for folder in (root / track, root):
        for suffix in (".py", ".ipynb"):
            if (folder / f"{stem}{suffix}").exists():
                return resolve_source(folder / f"{stem}.py")
    raise MissingScript(
        f"{stem}.py (or .ipynb) is missing from {paths.relative(root / track)}. "
        "Restore it from the course (e.g. `git checkout` it) or check the folder you graded."
    )


@functools.cache
def reference_exercises(track: str, stem: str) -> tuple[percent.Exercise, ...]:
    return tuple(percent.exercises(paths.SOLUTIONS / track / f"{stem}.py"))


_REFERENCE_MODULES: set[str] = set()


@functools.cache
def reference(track: str, stem: str) -> Namespace:
    loaded = load_script(paths.SOLUTIONS / track / f"{stem}.py")
    _REFERENCE_MODULES.add(loaded.module.__name__)
    namespace = Namespace.of_script(loaded)
    namespace.is_reference = True
    return namespace


def is_reference_module(name: str) -> bool:
    """Whether a module name is that of a loaded reference script (its functions must not be pickled by name)."""
    return name in _REFERENCE_MODULES


@functools.cache
def reference_for_sandbox(track: str, stem: str, exercise: str | None
                          ) -> tuple[list[percent.Cell], list[str], list[str]]:
    """What a sandbox grading `exercise` may hold of the reference: every cell but that exercise's.
    With `exercise` None (the student's whole script, graded at once), no exercise's cell.

    Returns those cells, the names they answer (to fill in), and the names withheld.
    """
    cells = percent.read_cells((paths.SOLUTIONS / track / f"{stem}.py").read_text(encoding="utf-8"))
    graded = [c for c in cells if c.exercise and (exercise is None or c.exercise == exercise)]
    if not graded:
        raise KeyError(f"{track}/{stem} has no exercise {exercise!r}")
    withheld = [name for c in graded for name in percent.defined_names(c.source)]
    filled = [name for other in reference_exercises(track, stem) if exercise is not None and other.name != exercise
              for name in other.names]
    return [c for c in cells if c not in graded], filled, withheld


class UnreadableScript(CheckFailed):
    """A student's file is there but cannot be read (a broken notebook, say)."""


def read_for_grading(path: Path) -> list[percent.Cell]:
    """The cells of a student's script or notebook (`UnreadableScript` if neither can be read)."""
    try:
        return read_source(path)
    except (ValueError, OSError) as error:
        raise UnreadableScript(f"{path.name} cannot be read ({error}). Save it again from Jupyter, "
                               "or hand in the paired .py script.") from None


def submission(path: Path, track: str, stem: str, exercise: str | None = None) -> Namespace:
    """A student's script; with `exercise`, the *other* exercises' names come from the reference."""
    return _submission(path, path.stat().st_mtime_ns, track, stem, exercise)


def reference_overrides(track: str, stem: str, exercise: str | None) -> dict[str, Any]:
    """The reference's definitions for every exercise of the script except `exercise`.

    None where the reference is not at hand (an installed course ships no solutions).
    """
    if exercise is None or not paths.has_solutions():
        return {}
    known = {e.name for e in reference_exercises(track, stem)}
    if exercise not in known:
        raise KeyError(f"{track}/{stem} has no exercise {exercise!r} (it has: {sorted(known)})")
    ref = reference(track, stem)
    return {
        name: getattr(ref, name)
        for other in reference_exercises(track, stem) if other.name != exercise
        for name in other.names
    }


@functools.cache
def _submission(path: Path, _mtime: int, track: str, stem: str, exercise: str | None) -> Namespace:
    return Namespace.of_script(load_script(path, overrides=reference_overrides(track, stem, exercise)))


@contextlib.contextmanager
def notebook_submission(namespace: dict[str, Any], track: str, stem: str, exercise: str | None) -> Iterator[Namespace]:
    """A running notebook's globals as a submission, the other exercises swapped for the reference's.

    The swap is made in place (the student's functions look their helpers up in these very
    globals) and undone on exit, so the notebook carries on with its own code.
    """
    overrides = reference_overrides(track, stem, exercise)
    saved = {name: namespace[name] for name in overrides if name in namespace}
    namespace.update(overrides)
    try:
        yield Namespace(namespace, f"the notebook {stem}.ipynb")
    finally:
        for name in overrides:
            namespace.pop(name, None)
        namespace.update(saved)
