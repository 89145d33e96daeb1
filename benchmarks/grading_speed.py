"""How long grading takes per submission: `grader grade -j 2` against `nbgrader autograde`.

Builds an nbgrader course for the `diffusion` track, releases it, submits N copies of the
reference answers, and times, in one run and on the same submissions:
- the nbgrader round trip: `generate_assignment`, `autograde`, `export`, `generate_feedback`;
- `grader grade -j 2` on the same `submitted/` tree (hidden suites in trusted workers, the
  student's code sandboxed), with where a submission's time goes.
Both give every submission full marks, which is checked. Each starts with an empty JAX
compilation cache. Then a class of `--class-size` generated submissions (right answers,
untouched stubs and plausible wrong answers, mixed per exercise) is graded with `-j 2`.

    uv run python benchmarks/grading_speed.py --submissions 4 --class-size 50
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from benchmarks.results import Table, save
from grader import nbgrader_course, paths, percent

NBGRADER = str(Path(sys.executable).parent / "nbgrader")


def nbgrader(course: Path, *args: str) -> float:
    """Run an nbgrader command; return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([NBGRADER, *args], cwd=course, check=True, capture_output=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return time.perf_counter() - start


def timed(*command: str, cwd: Path, env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def submit_reference_answers(course: Path, track: str, students: list[str]) -> None:
    for script in paths.solution_scripts(track):
        name = f"{script.stem}.ipynb"
        release = nbformat.read(course / "release" / track / name, 4)
        source = nbformat.read(course / "source" / track / name, 4)
        for student in students:
            folder = course / "submitted" / student / track
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(nbgrader_course.answered(release, source), folder / name)


WRONG_EDITS = [(" + ", " - "), (" * ", " + "), ("sqrt(", "square("), ("[-1]", "[0]"), ("axis=0", "axis=-1")]


def plausible_mistake(source: str, rng: random.Random) -> str:
    """The exercise's reference answer with one operator or index changed (a sign, a sqrt, an axis)."""
    edits = [(old, new) for old, new in WRONG_EDITS if old in source.split("\n", 1)[-1]]
    if not edits:
        return source + "\n    raise ValueError('not finished')"
    old, new = rng.choice(edits)
    head, body = source.split("\n", 1)
    return head + "\n" + body.replace(old, new, 1)


def generated_class(folder: Path, track: str, size: int, seed: int = 0) -> dict[str, str]:
    """`size` students: right, stub or a plausible mistake per exercise. Returns each one's kind."""
    rng, kinds = random.Random(seed), {}
    for number in range(size):
        kind = ["right", "stubs", "mixed"][number % 3]
        student = folder / f"student{number:03d}" / track
        student.mkdir(parents=True)
        for script in paths.solution_scripts(track):
            answers = percent.read_cells(script.read_text())
            stubs = {c.exercise: c for c in percent.read_cells((paths.EXERCISES / track / script.name).read_text())}
            cells = []
            for cell in answers:
                choice = {"right": "right", "stubs": "stub"}.get(kind) or rng.choice(["right", "stub", "mistake"])
                if cell.exercise is None or choice == "right":
                    cells.append(cell.source)
                elif choice == "stub":
                    cells.append(stubs[cell.exercise].source)
                else:
                    cells.append(plausible_mistake(cell.source, rng))
            (student / script.name).write_text("\n".join(cells) + "\n")
        kinds[student.parent.name] = kind
    return kinds


def timings(out: Path) -> dict[str, float]:
    """Mean seconds per submission, by what they went to, from the grader's result files."""
    totals: dict[str, float] = {}
    results = list(out.glob("*/result.json"))
    for result in results:
        for what, seconds in json.loads(result.read_text())["timing"].items():
            totals[what] = totals.get(what, 0.0) + seconds
    return {what: seconds / len(results) for what, seconds in totals.items()}


def grade(submitted: Path, out: Path, cwd: Path, cache: Path) -> float:
    return timed(sys.executable, "-m", "grader.cli", "grade", str(submitted), "--jobs", "2", "--out", str(out),
                 cwd=cwd, env={"JAX_COMPILATION_CACHE_DIR": str(cache)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="diffusion")
    parser.add_argument("--submissions", type=int, default=3)
    parser.add_argument("--class-size", type=int, default=50, help="generated submissions (0: skip)")
    args = parser.parse_args()
    whole_class, mixed = 0.0, []
    students = [f"student{i:03d}" for i in range(args.submissions)]
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        nbgrader_course.build(course, [args.track])
        times = {"generate_assignment": nbgrader(course, "generate_assignment", args.track)}
        submit_reference_answers(course, args.track, students)
        times["autograde"] = nbgrader(course, "autograde", args.track)
        times["export"] = nbgrader(course, "export", "--to", "grades.csv")
        times["generate_feedback"] = nbgrader(course, "generate_feedback", args.track)
        with open(course / "grades.csv") as file:
            nbgrader_scores = [float(row["score"]) / float(row["max_score"]) for row in csv.DictReader(file)]
        ours = grade(course / "submitted", course / "ours", course, course / "cache")  # nbgrader's started empty too
        with open(course / "ours" / "grades.csv") as file:
            our_scores = [float(row["score"]) / float(row["max_score"]) for row in csv.DictReader(file)]
        breakdown = timings(course / "ours")
        if args.class_size:
            kinds = generated_class(course / "class", args.track, args.class_size)
            whole_class = grade(course / "class", course / "class-grades", course, course / "class-cache")
            with open(course / "class-grades" / "grades.csv") as file:
                fractions = {row["student"]: float(row["score"]) / float(row["max_score"])
                             for row in csv.DictReader(file)}
            assert sorted(fractions) == sorted(kinds), "a generated submission got no row"
            assert all(fractions[s] == 1.0 for s, kind in kinds.items() if kind == "right"), fractions
            assert all(fractions[s] == 0.0 for s, kind in kinds.items() if kind == "stubs"), fractions
            mixed = sorted(fractions[s] for s, kind in kinds.items() if kind == "mixed")
    assert nbgrader_scores == our_scores == [1.0] * args.submissions, (nbgrader_scores, our_scores)

    report(args.track, args.submissions, times, ours, breakdown, args.class_size, whole_class, mixed)


def report(track: str, n: int, times: dict[str, float], ours: float, breakdown: dict[str, float],
           class_size: int, whole_class: float, mixed: list[float]) -> None:
    """Print the figures and `save` them: `times` of nbgrader's steps, `ours` (`grader grade`'s
    seconds for the `n` submissions), its `breakdown` per submission, and the generated class's
    seconds and mixed submissions' scores (`class_size` 0: none)."""
    scripts = len(paths.solution_scripts(track))
    print(f"Grading {n} submissions of track {track} ({scripts} notebooks each), {os.cpu_count()} CPUs; "
          "every submission scored full marks by both.")
    print("nbgrader round trip:")
    for step, seconds in times.items():
        print(f"  {step:20s} {seconds:7.1f} s")
    nb_per = times["autograde"] / n
    round_trip = times["autograde"] + times["export"] + times["generate_feedback"]
    print(f"  per submission: autograde {nb_per:.1f} s; autograde + export + feedback {round_trip / n:.1f} s")
    print(f"grader grade -j 2 (process start, results, feedback, Gradescope JSON and grades.csv included): "
          f"{ours:.1f} s, {ours / n:.1f} s per submission")
    print(f"ratio, nbgrader autograde / grader grade, per submission: {nb_per / (ours / n):.1f}x "
          "(target: at least 10x)")
    print("where a submission's time goes in its grading worker (mean seconds; two workers run at once):")
    for what, seconds in breakdown.items():
        print(f"  {what:50s} {seconds:6.2f}")
    tables = [
        Table(f"Grading {n} submissions of track {track} ({scripts} notebooks each)",
              ["grader", "total (s)", "per submission (s)"],
              [["nbgrader autograde", times["autograde"], nb_per],
               ["nbgrader autograde + export + generate_feedback", round_trip, round_trip / n],
               ["grader grade -j 2", ours, ours / n]],
              note=f"every submission scored full marks by both; nbgrader autograde / grader grade "
                   f"{nb_per / (ours / n):.1f}x per submission (target: at least 10x)"),
        Table("nbgrader round trip", ["step", "time (s)"], [[step, seconds] for step, seconds in times.items()]),
        Table("Where a submission's time goes in its grading worker", ["phase", "mean time (s)"],
              [[what, seconds] for what, seconds in breakdown.items()], note="two workers run at once"),
    ]
    if class_size:
        print(f"a class of {class_size} generated submissions (right, stubs, mixed mistakes), -j 2: "
              f"{whole_class:.1f} s in all, {whole_class / class_size:.2f} s per submission; mixed ones scored "
              f"{min(mixed):.0%} to {max(mixed):.0%}")
        tables.append(Table("A generated class (right answers, stubs, mixed mistakes), grader grade -j 2",
                            ["submissions", "total (s)", "per submission (s)", "mixed, lowest score (%)",
                             "mixed, highest score (%)"],
                            [[class_size, whole_class, whole_class / class_size, 100 * min(mixed), 100 * max(mixed)]]))
    save("grading_speed", tables,
         summary=f"grader grade -j 2 {ours / n:.1f} s per submission, nbgrader autograde {nb_per:.1f} s "
                 f"({nb_per / (ours / n):.1f}x)",
         figures={"submissions": n, "nbgrader_s": times, "grader_grade_s": ours, "breakdown_s": breakdown,
                  "class": {"size": class_size, "seconds": whole_class, "mixed_scores": mixed} if class_size else None})


if __name__ == "__main__":
    main()
