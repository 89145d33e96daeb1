"""How long grading takes per submission, with nbgrader, on the `diffusion` track.

Builds a course, releases it, submits N copies of the reference answers, and times the
whole nbgrader round trip: `generate_assignment`, `autograde`, `export`, `generate_feedback`.

    uv run python benchmarks/grading_speed.py --submissions 3
"""

from __future__ import annotations

import argparse
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
    scripts = len(paths.solution_scripts(args.track))
    print(f"nbgrader round trip, track {args.track}: {args.submissions} submissions of {scripts} notebooks, "
          f"{os.cpu_count()} CPUs")
    for step, seconds in times.items():
        print(f"  {step:20s} {seconds:7.1f} s")
    per = (times["autograde"] + times["export"] + times["generate_feedback"]) / args.submissions
    print(f"  per submission (autograde + export + feedback): {per:.1f} s; autograde alone "
          f"{times['autograde'] / args.submissions:.1f} s")


if __name__ == "__main__":
    main()
