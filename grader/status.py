"""`grader status`: the student's board of every track and exercise, from the visible tests.

Each track's visible tests run in a subprocess (a student's infinite loop cannot hang the
board), and the result is cached under `.grader/` until a file of the track changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from grader import paths, percent, submissions

CACHE = paths.REPO_ROOT / ".grader" / "status"
TIME_LIMIT_S = 300


@dataclass(frozen=True)
class ExerciseStatus:
    track: str
    script: str
    exercise: str
    state: str  # "todo", "failing", "passing", "no tests"
    passed: int
    total: int
    hint: str


def _fingerprint(track: str, root: Path) -> str:
    digest = hashlib.sha256()
    folders = [root / track, paths.EXERCISES / track, paths.SOLUTIONS / track,
               paths.REPO_ROOT / "course", paths.REPO_ROOT / "grader"]
    for folder in folders:
        for file in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if file.is_file() and file.suffix in {".py", ".ipynb"}:
                digest.update(str(file).encode() + file.read_bytes())
    return digest.hexdigest()


def run_visible_tests(track: str, target: str = "exercises") -> list[dict]:
    """Outcomes of the track's visible tests against a target, cached by content."""
    root = submissions.target_root(target)
    cached = CACHE / f"{track}-{_fingerprint(track, root)[:16]}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"{track}-*.json"):
        old.unlink()
    report = cached.with_suffix(".running")
    command = [sys.executable, "-m", "pytest", str(paths.EXERCISES / track), "-q", "-p", "no:cacheprovider",
               f"--target={root}", f"--grader-report={report}", "-W", "ignore"]
    env = {**os.environ, "COURSE_QUICK": "1", "MPLBACKEND": "Agg"}
    try:
        subprocess.run(command, cwd=paths.REPO_ROOT, env=env, capture_output=True, timeout=TIME_LIMIT_S)
    except subprocess.TimeoutExpired:
        return [{"nodeid": "", "exercise": None, "outcome": "failed", "todo": False,
                 "message": f"the visible tests of {track} took over {TIME_LIMIT_S} s (an endless loop?)"}]
    if not report.exists():
        return []
    results = json.loads(report.read_text())
    os.replace(report, cached)
    return results


def track_status(track: str, target: str = "exercises") -> list[ExerciseStatus]:
    results = run_visible_tests(track, target)
    board = []
    for script in paths.solution_scripts(track):
        for exercise in percent.exercises(script):
            mine = [r for r in results if r["exercise"] == exercise.name
                    and Path(r["nodeid"].split("::")[0]).stem == f"test_{script.stem}"]
            board.append(_summarise(track, script.stem, exercise.name, mine))
    return board


def _summarise(track: str, script: str, exercise: str, results: list[dict]) -> ExerciseStatus:
    passed = sum(r["outcome"] == "passed" for r in results)
    failed = [r for r in results if r["outcome"] == "failed"]
    if not results:
        state, hint = "no tests", ""
    elif not failed:
        state, hint = "passing", ""
    elif all(r["todo"] for r in failed) and passed == 0:
        state, hint = "todo", f"fill in `{exercise}` in exercises/{track}/{script}.py"
    else:
        state = "failing"
        first = next(r for r in failed if not r["todo"]) if any(not r["todo"] for r in failed) else failed[0]
        hint = first["message"].strip().splitlines()[0] if first["message"].strip() else "see pytest"
    return ExerciseStatus(track, script, exercise, state, passed, len(results), hint)
