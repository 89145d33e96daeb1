"""How long grading takes per submission: `grader grade -j 2` against `nbgrader autograde`.

Builds an nbgrader course for the `diffusion` track, releases it, submits N copies of the
reference answers, and times, in one run and on the same submissions:
- the nbgrader round trip: `generate_assignment`, `autograde`, `export`, `generate_feedback`;
- `grader grade -j 2` on the same `submitted/` tree (hidden suites, sandboxed, in parallel).
Both give every submission full marks, which is checked. Each starts with an empty JAX
compilation cache.

    uv run python benchmarks/grading_speed.py --submissions 4
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader import nbgrader_course, paths

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="diffusion")
    parser.add_argument("--submissions", type=int, default=3)
    args = parser.parse_args()
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
        cold_cache = {"JAX_COMPILATION_CACHE_DIR": str(course / "cache")}  # nbgrader's also started empty
        ours = timed(sys.executable, "-m", "grader.cli", "grade", str(course / "submitted"), "--jobs", "2",
                     "--out", str(course / "ours"), cwd=course, env=cold_cache)
        with open(course / "ours" / "grades.csv") as file:
            our_scores = [float(row["score"]) / float(row["max_score"]) for row in csv.DictReader(file)]
    assert nbgrader_scores == our_scores == [1.0] * args.submissions, (nbgrader_scores, our_scores)

    scripts = len(paths.solution_scripts(args.track))
    n = args.submissions
    print(f"Grading {n} submissions of track {args.track} ({scripts} notebooks each), {os.cpu_count()} CPUs; "
          "every submission scored full marks by both.")
    print("nbgrader round trip:")
    for step, seconds in times.items():
        print(f"  {step:20s} {seconds:7.1f} s")
    nb_per = times["autograde"] / n
    print(f"  per submission: autograde {nb_per:.1f} s; autograde + export + feedback "
          f"{(times['autograde'] + times['export'] + times['generate_feedback']) / n:.1f} s")
    print(f"grader grade -j 2 (results, feedback, Gradescope JSON and grades.csv included): {ours:.1f} s, "
          f"{ours / n:.1f} s per submission")
    print(f"ratio, nbgrader autograde / grader grade, per submission: {nb_per / (ours / n):.1f}x (target: at least 5x)")


if __name__ == "__main__":
    main()
