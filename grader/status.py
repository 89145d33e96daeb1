"""`grader status`: the student's board of every track and exercise, from the visible tests.

The visible tests run in the sandbox (a student's infinite loop cannot hang the board),
and each script's results are cached under `.grader/` (for an installed course, in the
user's cache folder) until that script, its tests or the grader change: after an edit,
only the edited script's tests run again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from grader import checking, paths, submissions
from grader.checking import ExerciseStatus

CACHE = paths.STATE / "status"


def _fingerprint(track: str, stem: str, root: Path) -> str:
    """Changes when the student's script, its tests, its reference, the library or the grader change."""
    files = [root / track / f"{stem}.py", root / track / f"{stem}.ipynb", root / f"{stem}.py", root / f"{stem}.ipynb",
             paths.EXERCISES / track / f"test_{stem}.py", paths.SOLUTIONS / track / f"{stem}.py"]
    return paths.digest(files)[:8] + paths.library_digest()[:8]


def run_visible_tests(track: str, target: str = "exercises") -> list[dict]:
    """Outcomes of the track's visible tests against a target; only scripts that changed run again."""
    root = submissions.target_root(target)
    CACHE.mkdir(parents=True, exist_ok=True)
    records, stale = [], []
    for script in paths.course_scripts(track):
        cached = CACHE / f"{track}-{script.stem}-{_fingerprint(track, script.stem, root)}.json"
        if cached.exists():
            records += json.loads(cached.read_text())
        else:
            stale.append((script.stem, cached))
    if stale:
        fresh = checking.run_visible_tests(track, root, scripts=[stem for stem, _ in stale])
        for stem, cached in stale:
            for old in CACHE.glob(f"{track}-{stem}-*.json"):
                old.unlink()
            partial = cached.with_suffix(".partial")
            partial.write_text(json.dumps([r for r in fresh if r["script"] == stem]))
            os.replace(partial, cached)
        records += fresh
    return records


def track_status(track: str, target: str = "exercises") -> list[ExerciseStatus]:
    return checking.summarise(track, run_visible_tests(track, target))
