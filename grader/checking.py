"""The visible tests of a track, run in the sandbox and summarised per exercise.

`grader check TRACK[/EXERCISE]` prints them in a few lines per exercise; `grader status`
caches them and draws the board.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader import paths, percent, sandbox, submissions, suites
from grader.pytest_plugin import exercise_of

LIMITS = sandbox.Limits(per_test_s=60, total_s=300)
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


def run_visible_tests(track: str, root: Path, exercise: str | None = None,
                      scripts: list[str] | None = None) -> list[dict]:
    """One record per visible test (script, exercise, passed, todo, message); optionally of some scripts only."""
    tests = [(script.stem, exercise_of(item), item.nodeid)
             for script in paths.solution_scripts(track) if scripts is None or script.stem in scripts
             for item in suites.collect(suites.test_file(track, script.stem, "visible"))
             if exercise is None or exercise_of(item) == exercise]
    results = sandbox.run_tests([nodeid for *_, nodeid in tests], root, LIMITS,
                                group_of={nodeid: f"{stem}::{name}" for stem, name, nodeid in tests})
    return [{"script": stem, "exercise": name, "passed": results[nodeid].passed, "todo": results[nodeid].todo,
             "message": results[nodeid].message} for stem, name, nodeid in tests]


def summarise(track: str, records: list[dict]) -> list[ExerciseStatus]:
    """Each exercise's state, in course order."""
    board = []
    for script in paths.solution_scripts(track):
        for exercise in percent.exercises(script):
            mine = [r for r in records if r["script"] == script.stem and r["exercise"] == exercise.name]
            board.append(_summarise_one(track, script.stem, exercise.name, mine))
    return board


def _summarise_one(track: str, script: str, exercise: str, records: list[dict]) -> ExerciseStatus:
    passed = sum(r["passed"] for r in records)
    failed = [r for r in records if not r["passed"]]
    if not records:
        state, hint = "no tests", ""
    elif not failed:
        state, hint = "passing", ""
    elif all(r["todo"] for r in failed) and passed == 0:
        state, hint = "todo", f"fill in `{exercise}` in exercises/{track}/{script}.py"
    else:
        state = "failing"
        hint = next((r["message"] for r in failed if not r["todo"]), failed[0]["message"]).strip() or "see pytest"
    return ExerciseStatus(track, script, exercise, state, passed, len(records), hint)


def check(track: str, exercise: str | None = None, target: str = "exercises") -> tuple[list[str], bool]:
    """Printable lines (one per exercise, plus what to do or the first failing check) and whether all pass."""
    known = {e.name for script in paths.solution_scripts(track) for e in percent.exercises(script)}
    if exercise is not None and exercise not in known:
        raise ValueError(f"{track} has no exercise {exercise!r}; it has: {', '.join(sorted(known))}.")
    records = run_visible_tests(track, submissions.target_root(target), exercise)
    board = [row for row in summarise(track, records) if exercise is None or row.exercise == exercise]
    lines = []
    for row in board:
        lines.append(f"{MARK[row.state]} {track}/{row.script} {row.exercise}: {row.passed}/{row.total} checks pass")
        if row.state == "todo":
            lines.append(f"    not done yet: {row.hint}")
        elif row.state == "failing":
            lines += ["    " + line for line in row.hint.splitlines()[:8]]
    return lines, all(row.state == "passing" for row in board)
