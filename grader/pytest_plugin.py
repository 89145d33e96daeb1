"""Pytest plugin: run the same tests against the exercises, the solutions or a submission.

- `--target {exercises,solutions,PATH}` picks whose scripts the `submission` fixture loads.
- Fixtures: `submission`, `reference`, `getkey`, `rng`, and `cpu_mesh` (simulated devices).
- Markers: `@pytest.mark.exercise("forward_noise")` names the exercise a test checks
  (so `--exercise forward_noise` runs just that one); `@pytest.mark.points(n)` its worth.
- Failures in students' code are reported in a few lines, not a long traceback.
- `--grader-report FILE` writes every test's outcome as JSON (used by `grader status`).
- JAX gets 8 simulated CPU devices when it has not started yet (the `scaling` track
  shards over them; other code still runs on the first device).
- Run in-process by `grader.suites`, the `submission` fixture can instead see a notebook's
  live namespace (nbgrader's autograder cells), handed over in `config.stash`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from grader import failures, paths, submissions
from grader.failures import CheckFailed

if TYPE_CHECKING:
    from grader import remote

NOTEBOOK_NAMESPACE = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("course", "course exercises")
    group.addoption(
        "--target", default="exercises",
        help="whose code to test: exercises (default), solutions, or a folder laid out like exercises/",
    )
    group.addoption("--exercise", action="append", default=[],
                    help="run only the tests of this exercise (repeatable)")
    group.addoption("--grader-report", metavar="FILE", help="write the outcome of every test as JSON")
    group.addoption("--in-process", action="store_true",
                    help="run the hidden tests' submission in this process, not in a sandbox "
                    "(to debug the hidden tests; never for grading)")


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module or conftest can start JAX: its devices are fixed from then on.
    # (Imported here, after jaxtyping has hooked the imports of `course`.)
    from course import devices

    devices.request_cpu_devices()
    use_compilation_cache()
    config.addinivalue_line("markers", "exercise(name): the exercise (nbgrader grade_id) a test checks")
    config.addinivalue_line("markers", "points(n): points the test is worth when grading")
    if config.getoption("--grader-report"):
        config.pluginmanager.register(Recorder(Path(config.getoption("--grader-report"))))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(config.getoption("--exercise"))
    if not wanted:
        return
    selected = [item for item in items if exercise_of(item) in wanted]
    config.hook.pytest_deselected(items=[item for item in items if item not in selected])
    items[:] = selected


COMPILATION_CACHE = paths.STATE / "jax-cache"


def compilation_cache_environment() -> dict[str, str]:
    """The variables that point a fresh process (a notebook's kernel) at the grader's compilation
    cache, keeping every program, since tests and demos compile many small ones quickly."""
    return {"JAX_COMPILATION_CACHE_DIR": os.environ.get("JAX_COMPILATION_CACHE_DIR", str(COMPILATION_CACHE)),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def use_compilation_cache() -> None:
    """Keep JAX's compiled programs on disk: re-running the tests after an edit is ~3x faster."""
    import jax

    if jax.config.jax_compilation_cache_dir is None:  # else JAX_COMPILATION_CACHE_DIR chose one
        jax.config.update("jax_compilation_cache_dir", str(COMPILATION_CACHE))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def exercise_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("exercise")
    return marker.args[0] if marker else None


def points_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("points")
    return float(marker.args[0]) if marker else 0.0


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def target_root(request: pytest.FixtureRequest) -> Path:
    try:
        return submissions.target_root(request.config.getoption("--target"))
    except FileNotFoundError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture
def submission(request: pytest.FixtureRequest, target_root: Path) -> Iterator[submissions.Namespace]:
    """The target's script for this test file; other exercises are filled from the reference.

    For a hidden test it is the script loaded in a sandboxed process (`grader.remote`),
    unless `--in-process` (or a notebook's own namespace, in nbgrader's cells).
    """
    track, stem = paths.script_of_test(request.path)
    namespace = request.config.stash.get(NOTEBOOK_NAMESPACE, None)
    if namespace is not None:
        with submissions.notebook_submission(namespace, track, stem, exercise_of(request.node)) as live:
            yield live
        return
    if request.path.is_relative_to(paths.HIDDEN_TESTS) and not request.config.getoption("--in-process"):
        sandboxed = SandboxedSubmissions.of(request.config)
        yield sandboxed.submission(target_root).for_exercise(track, stem, exercise_of(request.node))
        return
    path = submissions.script_path(target_root, track, stem)
    yield submissions.submission(path, track, stem, exercise_of(request.node))


@pytest.fixture
def reference(request: pytest.FixtureRequest) -> submissions.Namespace:
    """The reference solution of this test file's script."""
    return submissions.reference(*paths.script_of_test(request.path))


class KeyFactory:
    """Fresh PRNG keys, deterministic per test so that grades are reproducible."""

    def __init__(self, seed: int):
        import jax

        self._key = jax.random.key(seed)

    def __call__(self):
        import jax

        self._key, new = jax.random.split(self._key)
        return new


def _test_seed(request: pytest.FixtureRequest) -> int:
    """A seed that depends only on the test's file and name, so grades are reproducible."""
    name = f"{request.path.parent.name}/{request.path.name}::{request.node.name}"
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


@pytest.fixture
def getkey(request: pytest.FixtureRequest) -> KeyFactory:
    """`getkey()` returns a fresh JAX PRNG key, for the functions under test."""
    return KeyFactory(_test_seed(request))


@pytest.fixture
def cpu_mesh():
    """`cpu_mesh((4, 2), ("data", "model"))`: a mesh of simulated CPU devices (see `course.devices`).

    Fails, saying what to do, when JAX started with too few devices for it.
    """
    import math

    import jax

    from course import devices

    def make(shape: tuple[int, ...], names: tuple[str, ...]):
        __tracebackhide__ = True
        count = math.prod(shape)
        try:
            devices.check_cpu_devices(count)
        except devices.TooFewDevicesError as error:
            raise CheckFailed(str(error)) from None
        return jax.make_mesh(shape, names, devices=jax.devices("cpu")[:count])

    return make


@pytest.fixture
def rng(request: pytest.FixtureRequest):
    """A NumPy random generator for test inputs: no JAX compilation, unlike jax.random."""
    import numpy as np

    return np.random.default_rng(_test_seed(request))


class SandboxedSubmissions:
    """The hidden tests' sandboxed submissions of one pytest session, one per target folder.

    `grader grade` registers one with its own `remote.Sandboxes` (kept across sessions);
    otherwise the first hidden test starts one for the session, without time limits.
    """

    NAME = "grader-sandboxed-submissions"

    def __init__(self, sandboxes: remote.Sandboxes | None = None, *, whole_scripts: bool = False,
                 clock: remote.Clock | None = None):
        self._sandboxes, self._owned = sandboxes, sandboxes is None
        self._whole_scripts, self._clock = whole_scripts, clock  # see `remote.Submission`
        self._submissions: dict[Path, remote.Submission] = {}
        self.spent: dict[str, float] = {}  # seconds in the student's processes, by what for (`remote.Clock`)

    @classmethod
    def of(cls, config: pytest.Config) -> SandboxedSubmissions:
        for plugin in config.pluginmanager.get_plugins():  # `grader grade` passes its own to pytest.main
            if isinstance(plugin, cls):
                return plugin
        plugin = cls()
        config.pluginmanager.register(plugin, cls.NAME)
        return plugin

    def submission(self, root: Path) -> remote.Submission:
        from grader import remote  # only hidden tests need it (and it is slow to import)

        if self._sandboxes is None:
            slot = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) + 100
            limits = remote.Limits(per_test_s=float("inf"), total_s=float("inf"))
            import jax

            cache = jax.config.jax_compilation_cache_dir
            self._sandboxes = remote.Sandboxes(limits, paths.tracks(), slot=slot,
                                               read_only_cache=Path(cache) if cache else None,
                                               warn=lambda line: print(line, file=sys.stderr))
        if root not in self._submissions:
            self._submissions[root] = remote.Submission(self._sandboxes, root, whole_scripts=self._whole_scripts,
                                                        clock=self._clock)
        return self._submissions[root]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        for each in self._submissions.values():
            each.clock.start_test()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for each in self._submissions.values():
            each.close()
            for what, seconds in each.clock.spent.items():
                self.spent[what] = self.spent.get(what, 0.0) + seconds
            each.clock.spent.clear()  # a clock shared with the next session counts that one afresh
        self._submissions.clear()
        if self._owned and self._sandboxes is not None:
            self._sandboxes.close()
            self._sandboxes = None


# --- short failure reports --------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if call.excinfo is not None and report.failed:
        failure = failures.describe(call.excinfo.value)
        if failure.short is not None:
            report.longrepr = failure.short
        elif isinstance(call.excinfo.value, failures.SubmissionFailed):
            report.longrepr = call.excinfo.value.details or report.longrepr
        report.user_properties.append(("todo", failure.todo))
        report.user_properties.append(("brief", failure.short is not None))
        report.user_properties.append(("error", failure.typename))
    report.user_properties.append(("exercise", exercise_of(item)))
    report.user_properties.append(("points", points_of(item)))
    return report


@dataclass(frozen=True)
class TestOutcome:
    """One test's result, as the Recorder records it (or as the sandbox reports a crash)."""

    __test__ = False  # not a test class, despite its name

    nodeid: str
    passed: bool
    message: str = ""
    brief: bool = True  # the message is the course's short report, not pytest's (which quotes the test)
    todo: bool = False
    error: str = ""  # the exception's type, when it failed
    exercise: str | None = None
    points: float = 0.0

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[-1]

    @classmethod
    def from_record(cls, record: dict) -> TestOutcome:
        return cls(record["nodeid"], record.get("outcome") == "passed", record.get("message", ""),
                   bool(record.get("brief")), bool(record.get("todo")), str(record.get("error", "")),
                   record.get("exercise"), float(record.get("points", 0.0)))


class Recorder:
    """Collects every test's outcome (and writes them as JSON at the end, given a destination)."""

    def __init__(self, destination: Path | None):
        self.destination = destination
        self.results: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        record = self.results.setdefault(report.nodeid, {
            "nodeid": report.nodeid, "exercise": props.get("exercise"),
            "points": props.get("points", 0.0), "outcome": "passed", "todo": False, "message": "",
            "brief": False, "error": "",
        })
        if report.failed:
            record["outcome"] = "failed"
            record["todo"] = record["todo"] or bool(props.get("todo"))
            if not record["message"]:  # the first failure (call or teardown) explains the test
                record["message"] = str(report.longrepr)
                record["brief"], record["error"] = bool(props.get("brief")), props.get("error", "")
        elif report.skipped and record["outcome"] == "passed":
            record["outcome"] = "skipped"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.destination is None:
            return
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        partial = self.destination.with_name(self.destination.name + ".partial")
        partial.write_text(json.dumps(list(self.results.values()), indent=1), encoding="utf-8")
        os.replace(partial, self.destination)
