"""The visible tests of a track, run in the sandbox and summarised per exercise.

`grader check TRACK[/EXERCISE]` prints them in a few lines per exercise; `grader status`
caches them and draws the board.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from grader import paths, percent, sandbox, submissions, suites
from grader.pytest_plugin import exercise_of

LIMITS = sandbox.Limits(per_test_s=60, total_s=300)
TODO_NAME = re.compile(r"Exercise '(\w+)' is not done yet")  # the stubs' message (`grader.sync`)
MARK = {"passing": "✓", "failing": "✗", "todo": "·", "no tests": " "}


@dataclass(frozen=True)
class ExerciseStatus:
    track: str
    script: str
    exercise: str
    state: str  # "todo", "failing", "passing", "no tests"
    passed: int
    total: int
    hint: str  # what to do next, or the first failing check's message


def visible_tests(track: str, stem: str) -> list[tuple[str, str | None]]:
    """(node id, exercise) of every visible test of a script, collected once per version of its tests.

    Collecting imports the tests (and JAX): cached, a check starts no JAX outside the sandbox.
    """
    file = suites.test_file(track, stem, "visible")
    cached = paths.STATE / "collected" / f"{track}-{stem}-{paths.digest([file])[:12]}{paths.library_digest()[:8]}.json"
    if cached.exists():
        return [tuple(entry) for entry in json.loads(cached.read_text())]
    tests = [(item.nodeid, exercise_of(item)) for item in suites.collect(file)]
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(tests))
    os.replace(partial, cached)
    return tests


def run_visible_tests(track: str, root: Path, exercise: str | None = None,
                      scripts: list[str] | None = None) -> list[dict]:
    """One record per visible test (script, exercise, passed, todo, message); optionally of some scripts only."""
    tests = [(script.stem, name, nodeid)
             for script in paths.course_scripts(track) if scripts is None or script.stem in scripts
             for nodeid, name in visible_tests(track, script.stem)
             if exercise is None or name == exercise]
    results = sandbox.run_tests([nodeid for *_, nodeid in tests], root, LIMITS,
                                group_of={nodeid: f"{stem}::{name}" for stem, name, nodeid in tests})
    return [{"script": stem, "exercise": name, "passed": results[nodeid].passed, "todo": results[nodeid].todo,
             "message": results[nodeid].message} for stem, name, nodeid in tests]


def summarise(track: str, records: list[dict]) -> list[ExerciseStatus]:
    """Each exercise's state, in course order."""
    board = []
    for script in paths.course_scripts(track):
        for exercise in percent.exercises(script):
            mine = [r for r in records if r["script"] == script.stem and r["exercise"] == exercise.name]
            board.append(_summarise_one(track, script.stem, exercise.name, mine))
    return board


def _summarise_one(track: str, script: str, exercise: str, records: list[dict], where: str | None = None
                   ) -> ExerciseStatus:
    """`where`: how to point at the exercise in a "not done yet" hint (default: its script's path)."""
    where = where or f"in exercises/{track}/{script}.py"
    passed = sum(r["passed"] for r in records)
    failed = [r for r in records if not r["passed"]]
    unfinished = {name for r in failed if r["todo"] for name in TODO_NAME.findall(r["message"])}
    others = sorted(unfinished - {exercise}) if exercise not in unfinished else []
    if not records:
        state, hint = "no tests", ""
    elif not failed:
        state, hint = "passing", ""
    elif all(r["todo"] for r in failed) and others:
        # Only an installed course lacks the reference that stands in for unfinished exercises.
        state = "todo"
        hint = (f"`{exercise}` uses {', '.join(f'`{name}`' for name in others)}, not done yet: do "
                f"{'it' if len(others) == 1 else 'them'} first")
    elif all(r["todo"] for r in failed) and passed == 0:
        state, hint = "todo", f"fill in `{exercise}` {where}"
    else:
        state = "failing"
        hint = next((r["message"] for r in failed if not r["todo"]), failed[0]["message"]).strip() or "see pytest"
    return ExerciseStatus(track, script, exercise, state, passed, len(records), hint)


def describe(row: ExerciseStatus, label: str) -> list[str]:
    """An exercise's line (mark, label, checks passing), then what to do or its first failing check."""
    lines = [f"{MARK[row.state]} {label}: {row.passed}/{row.total} checks pass"]
    if row.state == "todo":
        lines.append(f"    not done yet: {row.hint}")
    elif row.state == "failing":
        lines += ["    " + line for line in row.hint.splitlines()[:8]]
    elif row.state == "no tests":
        lines[0] = f"{MARK[row.state]} {label}: no visible checks (the hidden tests grade it)"
    return lines


def known_exercises(track: str) -> set[str]:
    return {e.name for script in paths.course_scripts(track) for e in percent.exercises(script)}


def check(track: str, exercise: str | None = None, target: str = "exercises") -> tuple[list[str], bool]:
    """Printable lines (one per exercise, plus what to do or the first failing check) and whether all pass."""
    known = known_exercises(track)
    if exercise is not None and exercise not in known:
        raise ValueError(f"{track} has no exercise {exercise!r}; it has: {', '.join(sorted(known))}.")
    records = run_visible_tests(track, submissions.target_root(target), exercise)
    board = [row for row in summarise(track, records) if exercise is None or row.exercise == exercise]
    lines = [line for row in board for line in describe(row, f"{track}/{row.script} {row.exercise}")]
    return lines, all(row.state == "passing" for row in board)
