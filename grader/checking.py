"""`grader check TRACK[/EXERCISE]`: the visible tests, run in the sandbox, in a few lines per exercise."""

from __future__ import annotations

from grader import paths, percent, sandbox, submissions, suites
from grader.pytest_plugin import exercise_of

MARK = {"passing": "✓", "failing": "✗", "todo": "·"}


def check(track: str, exercise: str | None = None, target: str = "exercises") -> tuple[list[str], bool]:
    """Printable lines (one per exercise, plus the first failing check) and whether all passed."""
    root = submissions.target_root(target)
    scripts = paths.solution_scripts(track)
    known = {e.name for script in scripts for e in percent.exercises(script)}
    if exercise is not None and exercise not in known:
        raise ValueError(f"{track} has no exercise {exercise!r}; it has: {', '.join(sorted(known))}.")
    tests = [(script.stem, exercise_of(item), item.nodeid)
             for script in scripts
             for item in suites.collect(suites.test_file(track, script.stem, "visible"))
             if exercise is None or exercise_of(item) == exercise]
    results = sandbox.run_tests([nodeid for *_, nodeid in tests], root, sandbox.Limits(per_test_s=60, total_s=300),
                                group_of={nodeid: f"{stem}::{ex}" for stem, ex, nodeid in tests})
    lines, all_passing = [], True
    for script in scripts:
        for name in [e.name for e in percent.exercises(script)]:
            mine = [results[nodeid] for stem, ex, nodeid in tests if stem == script.stem and ex == name]
            if not mine:
                continue
            failed = [r for r in mine if not r.passed]
            state = "passing" if not failed else "todo" if all(r.todo for r in failed) else "failing"
            all_passing &= state == "passing"
            passed = len(mine) - len(failed)
            lines.append(f"{MARK[state]} {track}/{script.stem} {name}: {passed}/{len(mine)} checks pass")
            if state == "failing":
                first = next(r for r in failed if not r.todo)
                lines += ["    " + line for line in first.message.strip().splitlines()[:8]]
            elif state == "todo":
                lines.append(f"    not done yet: fill in `{name}` in exercises/{track}/{script.stem}.py")
    return lines, all_passing
