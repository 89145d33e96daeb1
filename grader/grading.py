"""`grader grade`: score folders of submissions with the hidden suites, in a sandbox, in parallel.

A submission is a folder laid out like `exercises/` (`<track>/NN_topic.py` or `.ipynb`, or
the scripts directly inside it), or a folder of such folders, one per student, as
nbgrader's `submitted/` tree is (`submitted/<student>/<assignment>/`). Each student gets
`result.json`, `feedback.md` and a Gradescope `results.json` under `--out/<student>/`;
the class gets `grades.csv`. Results are written atomically and reused on a re-run
unless the submission, the tests or the reference changed (or `--force`).
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from grader import paths, reports, sandbox, suites
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


def grade(submission: Submission, tracks: list[str], limits: sandbox.Limits, fingerprint_: str) -> Grade:
    """Run the hidden suites of `tracks` on one submission and score them (`fingerprint_`: of its files)."""
    start = time.monotonic()
    tests = [test for track in tracks for test in hidden_tests(track)]
    groups = {t.nodeid: f"{t.script}::{t.exercise}" for t in tests}
    results = sandbox.run_tests([t.nodeid for t in tests], submission.root, limits, group_of=groups, env=GRADING_ENV)
    rows = []
    for test in tests:
        result = results[test.nodeid]
        rows.append({**asdict(test), "name": test.name, "passed": result.passed,
                     "score": test.points if result.passed else 0.0,
                     "message": reports.safe_message(result.message, brief=result.brief, error=result.error)})
    return Grade(submission.student, tracks, sum(r["score"] for r in rows), sum(t.points for t in tests), rows,
                 round(time.monotonic() - start, 2), fingerprint_)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def save(grade_: Grade, out: Path) -> None:
    """result.json last: its presence means the student's files are complete."""
    folder = out / grade_.student
    write_atomically(folder / "feedback.md", reports.feedback_markdown(grade_))
    write_atomically(folder / "results.json", json.dumps(reports.gradescope(grade_), indent=1))
    write_atomically(folder / "result.json", json.dumps(asdict(grade_), indent=1))


def load(out: Path, student: str) -> Grade | None:
    try:
        return Grade(**json.loads((out / student / "result.json").read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def grade_all(folders: list[Path], out: Path, *, tracks: list[str] | None = None, jobs: int = 2,
              force: bool = False, limits: sandbox.Limits | None = None, progress: bool = True,
              log=print) -> list[Grade]:
    """Grade every submission found in `folders` (skipping those already graded), write grades.csv.

    A submission the grader itself fails on is reported through `log` and left ungraded (a
    re-run tries it again); the others carry on. On Ctrl-C the running children are
    stopped; what was graded is kept, and a re-run goes on from there.
    """
    limits = limits or sandbox.Limits()
    from concurrent.futures import ThreadPoolExecutor, as_completed, wait

    from rich.progress import Progress

    work, grades = [], []
    for submission in find_submissions(folders):
        wanted = tracks or submission.tracks()
        current = fingerprint(submission, wanted)
        previous = None if force else load(out, submission.student)
        if previous is not None and previous.fingerprint == current:
            grades.append(previous)
        else:
            work.append((submission, wanted, current))
    for track in {track for _, wanted, _ in work for track in wanted}:
        hidden_tests(track)  # collect once, before the threads start
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("grading", total=len(work))
            futures = {}
            for position, (submission, wanted, current) in enumerate(work):
                futures[pool.submit(grade, submission, wanted, limits, current)] = submission
                if position == 0 and len(work) > 1:  # grade one alone first: it fills JAX's compilation
                    wait(futures)                     # cache, so the others find the reference compiled
            for future in as_completed(futures):
                bar.advance(task)
                try:
                    done = future.result()
                except Exception as error:  # a bug of ours must not cost the other students their grades
                    log(f"could not grade {futures[future].student}: {type(error).__name__}: {error}")
                    continue
                save(done, out)
                grades.append(done)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        sandbox.stop_all()
        log(f"Interrupted: {len(grades)} of {len(grades) + len(work)} graded and saved; run again to go on.")
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        write_atomically(out / "grades.csv", reports.grades_csv(grades))
    return sorted(grades, key=lambda g: g.student)
