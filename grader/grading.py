"""`grader grade`: score folders of submissions with the hidden suites, in a sandbox, in parallel.

A submission is a folder laid out like `exercises/` (`<track>/NN_topic.py` or `.ipynb`, or
the scripts directly inside it), or a folder of such folders, one per student, as
nbgrader's `submitted/` tree is (`submitted/<student>/<assignment>/`). Each student gets
`result.json`, `feedback.md` and a Gradescope `results.json` under `--out/<student>/`;
the class gets `grades.csv`. Results are written atomically and reused on a re-run
unless the submission, the tests or the reference changed (or `--force`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from grader import compile_time, namespaces, paths, remote, reports, sealing, suites
from grader.pytest_plugin import TestOutcome
from grader.reports import Grade

# Equinox's runtime errors (in diffrax solves, say) become NaN, which the checks report;
# without the host callbacks that raise them, JAX can cache those programs on disk, which
# makes grading a class several seconds faster per submission.
GRADING_ENV = {"EQX_ON_ERROR": "nan"}


@dataclass(frozen=True)
class HiddenTest:
    nodeid: str
    track: str
    script: str
    exercise: str
    points: float

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[-1]


@functools.cache
def hidden_tests(track: str) -> tuple[HiddenTest, ...]:
    """Every hidden test of a track with its exercise and points, collected by this (trusted) process."""
    from grader.pytest_plugin import exercise_of, points_of

    tests = []
    for script in paths.solution_scripts(track):
        file = suites.test_file(track, script.stem, "hidden")
        if not file.exists():
            continue
        for item in suites.collect(file):
            tests.append(HiddenTest(item.nodeid, track, script.stem, exercise_of(item) or "", points_of(item)))
    return tuple(tests)


@dataclass
class Submission:
    student: str
    root: Path

    def tracks(self) -> list[str]:
        """Tracks this submission has work for: a track folder, or scripts named like a track's."""
        found = []
        for track in paths.tracks():
            stems = {script.stem for script in paths.solution_scripts(track)}
            files = [*(self.root / track).glob("[0-9]*"), *self.root.glob("[0-9]*")]
            if (self.root / track).is_dir() or any(f.stem in stems for f in files):
                found.append(track)
        return found


def find_submissions(folders: list[Path]) -> list[Submission]:
    """Students in the given folders: each folder is one submission, or holds one per student."""
    found = []
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder. Give folders laid out like exercises/, "
                                    "or a folder of them (one per student, like nbgrader's submitted/).")
        if Submission(folder.name, folder).tracks():
            found.append(Submission(folder.name, folder))
        else:
            found += [Submission(child.name, child) for child in sorted(folder.iterdir())
                      if child.is_dir() and not child.name.startswith(".")]
    students = [s.student for s in found]
    duplicates = sorted({s for s in students if students.count(s) > 1})
    if duplicates:
        raise ValueError(f"Two submissions are named {', '.join(duplicates)}: grade them in separate runs.")
    return found


def fingerprint(submission: Submission, tracks: list[str]) -> str:
    """Changes when the student's files, the hidden tests, the reference or the grader change."""
    files = [f for track in tracks for f in paths.solution_scripts(track)]
    files += sorted(f for f in submission.root.rglob("*") if f.suffix in {".py", ".ipynb"})
    return paths.digest(files) + paths.library_digest() + ",".join(tracks)


@dataclass(frozen=True)
class Settings:
    """How a class is graded: the same in every worker process."""

    limits: remote.Limits
    tracks: tuple[str, ...]  # every track some submission is graded on: the fork server preloads their imports
    unsafe: bool = False  # grade without the OS sandbox (only time and memory limits)


_sandboxes: dict[Settings, remote.Sandboxes] = {}  # this worker's fork server, made on first use
_slot = [os.getpid() % 250]
_one_at_a_time = threading.Lock()  # which block of sandbox uids this worker uses (see `remote.Sandboxes`)


def _start_worker(slots) -> None:
    """A grading worker's initializer: its own uid block, and Ctrl-C left to the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with slots.get_lock():
        _slot[0], slots.value = slots.value, slots.value + 1


def sandboxes(settings: Settings) -> remote.Sandboxes:
    """This worker's fork server and sandbox policy, made on first use.

    The sandboxes get no compilation cache: the trusted side's holds the reference's
    compiled programs, which student code could load and run on its own inputs.
    """
    if settings not in _sandboxes:
        from grader.pytest_plugin import use_compilation_cache

        os.environ.update(GRADING_ENV)  # before the hidden tests import equinox

        use_compilation_cache()  # for the reference, in this trusted process
        _sandboxes[settings] = remote.Sandboxes(settings.limits, list(settings.tracks), unsafe=settings.unsafe,
                                                required=not settings.unsafe, slot=_slot[0])
    return _sandboxes[settings]


class _Phases:
    """Where a grading's time goes in this process: collecting the tests, and running them."""

    def __init__(self):
        self.start = self.collected = time.perf_counter()

    def pytest_collection_finish(self, session) -> None:
        self.collected = time.perf_counter()


def run_hidden_tests(tests: list[HiddenTest], root: Path, settings: Settings
                     ) -> tuple[dict[str, TestOutcome], dict[str, float]]:
    """Run hidden tests in this (trusted) process; the student's code runs in sandboxes it starts.

    First each script runs in one sandbox with only the student's code, for the tests of all
    its exercises. An exercise that fails any test there is graded again in a sandbox of its
    own, where the reference fills in the script's other exercises (so that a wrong answer
    costs only its own exercise); its outcomes are the ones kept. A script right throughout
    starts one process instead of one per exercise.

    Returns each test's outcome, and seconds by what they went to.
    """
    compile_time.seconds()  # start counting
    started = time.perf_counter()
    sandboxes_ = sandboxes(settings)
    first_start = {"starting the worker's fork server (once)": time.perf_counter() - started} \
        if time.perf_counter() - started > 0.05 else {}
    clock = remote.Clock(settings.limits)
    outcomes, timing = _pytest_session(tests, root, sandboxes_, clock, whole_scripts=True)
    failed = {(t.track, t.script, t.exercise) for t in tests if not outcomes[t.nodeid].passed}
    again = [t for t in tests if (t.track, t.script, t.exercise) in failed]
    if again:
        retried, more = _pytest_session(again, root, sandboxes_, clock, whole_scripts=False)
        outcomes.update(retried)
        timing = {what: timing.get(what, 0.0) + more.get(what, 0.0) for what in {**timing, **more}}
    return outcomes, {what: round(seconds, 3) for what, seconds in {**first_start, **timing}.items()}


def _pytest_session(tests: list[HiddenTest], root: Path, sandboxes_: remote.Sandboxes, clock: remote.Clock, *,
                    whole_scripts: bool) -> tuple[dict[str, TestOutcome], dict[str, float]]:
    """One pytest session of these hidden tests (see `remote.Submission` for `whole_scripts`)."""
    import contextlib
    import io

    import pytest

    from grader.pytest_plugin import Recorder, SandboxedSubmissions

    sandboxed = SandboxedSubmissions(sandboxes_, whole_scripts=whole_scripts, clock=clock)
    recorder, phases = Recorder(None), _Phases()
    compiled_before = compile_time.seconds()
    arguments = [str(paths.REPO_ROOT / test.nodeid) for test in tests] + [
        f"--target={root}", f"--rootdir={paths.REPO_ROOT}", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
        "-W", "ignore", "-p", "no:unraisableexception", "-p", "no:threadexception", "-p", "no:faulthandler"]
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        pytest.main(arguments, plugins=[recorder, sandboxed, phases])
    outcomes = {}
    for test in tests:
        record = recorder.results.get(test.nodeid)
        outcomes[test.nodeid] = (TestOutcome.from_record(record) if record is not None else
                                 TestOutcome(test.nodeid, False, "The test could not run:\n" + output.getvalue()[-800:],
                                             brief=False, error="an error of the grader"))
    running = time.perf_counter() - phases.collected
    timing = {"collecting the tests": phases.collected - phases.start, **sandboxed.spent,
              "compiling the reference (trusted)": compile_time.seconds() - compiled_before}
    timing["running the reference and the checks (trusted)"] = running - sum(
        seconds for what, seconds in timing.items() if what != "collecting the tests")
    return outcomes, timing


def grade(submission: Submission, tracks: list[str], fingerprint_: str, settings: Settings) -> Grade:
    """Run the hidden suites of `tracks` on one submission and score them (`fingerprint_`: of its files)."""
    start = time.monotonic()
    tests = [test for track in tracks for test in hidden_tests(track)]
    with _one_at_a_time:  # pytest runs one session at a time in a process (a Dask worker may have threads)
        results, timing = run_hidden_tests(tests, submission.root, settings)
    rows = []
    for test in tests:
        result = results[test.nodeid]
        rows.append({**asdict(test), "name": test.name, "passed": result.passed,
                     "score": test.points if result.passed else 0.0,
                     "message": reports.safe_message(result.message, brief=result.brief, error=result.error)})
    return Grade(submission.student, tracks, sum(r["score"] for r in rows), sum(t.points for t in tests), rows,
                 round(time.monotonic() - start, 2), fingerprint_, timing)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def save(grade_: Grade, out: Path) -> None:
    """result.json last, sealed: its presence means the student's files are complete and ours."""
    folder = out / grade_.student
    write_atomically(folder / "feedback.md", reports.feedback_markdown(grade_))
    write_atomically(folder / "results.json", json.dumps(reports.gradescope(grade_), indent=1))
    write_atomically(folder / "result.json", json.dumps(sealing.seal(asdict(grade_)), indent=1))


def load(out: Path, student: str) -> Grade | None:
    """The result a previous run saved for this student, if this grader wrote and sealed it."""
    try:
        record = sealing.unsealed(json.loads((out / student / "result.json").read_text()))
        return Grade(**record) if record is not None else None
    except (OSError, ValueError, TypeError):
        return None


class LocalRunner:
    """Gradings in worker processes on this machine (trusted: student code runs in sandboxes they start)."""

    def __init__(self, jobs: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # never fork a process that has JAX's threads
        self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker,
                                        initargs=(context.Value("i", 0),))

    def submit(self, submission: Submission, tracks: list[str], fingerprint_: str, settings: Settings):
        return self.pool.submit(grade, submission, tracks, fingerprint_, settings)

    def as_completed(self, futures):
        from concurrent.futures import as_completed

        return as_completed(futures)

    def warm_up(self, future) -> None:
        """Wait for the first grading: it fills JAX's compilation cache with the reference's programs."""
        future.exception()

    def stop(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def kill(self) -> None:
        """Kill the workers now; their fork servers and sandboxes die with them (parent-death signals)."""
        import signal

        for process in list(getattr(self.pool, "_processes", {}).values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        self.stop()


def grade_all(folders: list[Path], out: Path, *, tracks: list[str] | None = None, jobs: int = 2,
              force: bool = False, limits: remote.Limits | None = None, unsafe: bool = False,
              scheduler: str | None = None, progress: bool = True, log=print) -> list[Grade]:
    """Grade every submission found in `folders` (skipping those already graded), write grades.csv.

    Without `unsafe`, refuses (`remote.SandboxRefused`) on a machine that cannot sandbox
    student code. A student folder with nothing recognisable in it is graded on the class's
    tracks (so it gets its row of zeros). A submission the grader itself fails on is
    reported through `log` and left ungraded (a re-run tries it again); the others carry
    on. On Ctrl-C the workers and their sandboxes are killed; what was graded is kept, and
    a re-run goes on from there. `scheduler`: the address of a Dask scheduler whose workers
    grade instead of `jobs` local processes (`grader.cluster`).
    """
    from rich.progress import Progress

    found = find_submissions(folders)
    detected = {submission.student: submission.tracks() for submission in found}
    class_tracks = paths.in_course_order(track for each in detected.values() for track in each) or paths.tracks()
    work, grades = [], []
    for submission in found:
        wanted = tracks or detected[submission.student] or class_tracks
        current = fingerprint(submission, wanted)
        previous = None if force else load(out, submission.student)
        if previous is not None and previous.fingerprint == current:
            grades.append(previous)
        else:
            work.append((submission, wanted, current))
    graded_tracks = tuple(paths.in_course_order(track for _, wanted, _ in work for track in wanted))
    settings = Settings(limits or remote.Limits(), graded_tracks, unsafe)
    if work and not unsafe and not scheduler:  # on a cluster, each worker checks its own machine
        check_sandbox(settings)
    if scheduler:
        from grader.cluster import ClusterRunner

        runner = ClusterRunner(scheduler)
    else:
        runner = LocalRunner(jobs)
    try:
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("grading", total=len(work))
            futures = {}
            for position, (submission, wanted, current) in enumerate(work):
                future = runner.submit(submission, wanted, current, settings)
                futures[future] = submission
                if position == 0 and len(work) > 1:
                    runner.warm_up(future)
            for future in runner.as_completed(list(futures)):
                bar.advance(task)
                try:
                    done = future.result()
                except Exception as error:  # a bug of ours must not cost the other students their grades
                    log(f"could not grade {futures[future].student}: {type(error).__name__}: {error}")
                    continue
                save(done, out)
                grades.append(done)
    except KeyboardInterrupt:
        getattr(runner, "kill", runner.stop)()
        log(f"Interrupted: {len(grades)} of {len(found)} graded and saved; run again to go on.")
        raise
    finally:
        runner.stop()
        write_atomically(out / "grades.csv", reports.grades_csv(grades))
    return sorted(grades, key=lambda g: g.student)


def check_sandbox(settings: Settings) -> None:
    """Raise `remote.SandboxRefused` (saying what is missing) if this machine cannot sandbox student code."""
    missing = sandbox_missing(settings.limits)
    if missing is not None:
        raise remote.SandboxRefused(remote.refusal(missing))


def sandbox_missing(limits: remote.Limits) -> str | None:
    """What this machine lacks to sandbox student code, or None (asks a short-lived fork server)."""
    zygote = remote.Zygote(["grader.student_process"])
    try:
        policy = namespaces.default_policy(paths.REPO_ROOT, memory_mb=limits.memory_mb,
                                           uid=remote.UID_BASE if os.getuid() == 0 else None)
        return zygote.probe(policy)
    finally:
        zygote.close()
