"""What graders and students read: feedback in Markdown, Gradescope's results.json, grades.csv.

None of it quotes a hidden test's code: a failure shows the course's short message, or
only the kind of error when pytest's own report (which quotes the test) is all there is.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from grader import paths


@dataclass
class Grade:
    """One student's graded submission: every hidden test's outcome, and the totals."""

    student: str
    tracks: list[str]
    score: float
    max_score: float
    tests: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    fingerprint: str = ""
    timing: dict[str, float] = field(default_factory=dict)  # where `seconds` went (`grading.run_hidden_tests`)

    def exercises(self) -> list[dict]:
        """Score per exercise, in course order."""
        table: dict[tuple, dict] = {}
        for test in self.tests:
            key = (test["track"], test["script"], test["exercise"])
            row = table.setdefault(key, {"track": key[0], "script": key[1], "exercise": key[2],
                                         "score": 0.0, "max_score": 0.0})
            row["score"] += test["score"]
            row["max_score"] += test["points"]
        return list(table.values())


def safe_message(message: str, *, brief: bool, error: str = "") -> str:
    """What a student may see of a failed hidden test: the short report, else only the kind of error."""
    return message.strip() if brief else f"The check failed with {error or 'an error'}."


def feedback_markdown(grade: Grade) -> str:
    lines = [f"# Feedback for {grade.student}", "",
             f"**Score: {grade.score:g} / {grade.max_score:g}** (tracks: {', '.join(grade.tracks)})", "",
             "| exercise | score |", "| --- | --- |"]
    lines += [f"| {row['track']}/{row['script']}: `{row['exercise']}` | {row['score']:g} / {row['max_score']:g} |"
              for row in grade.exercises()]
    failed = [test for test in grade.tests if not test["passed"]]
    if failed:
        lines += ["", "## What to fix", ""]
        for test in failed:
            message = test["message"].replace("\n", "\n    ")
            lines += [f"- `{test['exercise']}` ({test['name']}, {test['points']:g} points):", "",
                      f"    {message}", ""]
    return "\n".join(lines).rstrip() + "\n"


def gradescope(grade: Grade) -> dict:
    """Gradescope's results.json: the total and one entry per hidden test."""
    return {
        "score": grade.score,
        "execution_time": grade.seconds,
        "output": f"{grade.score:g} of {grade.max_score:g} points.",
        "tests": [
            {"name": f"{test['track']}/{test['script']}: {test['exercise']} - {test['name']}",
             "score": test["score"], "max_score": test["points"],
             "output": test["message"] or "passed", "visibility": "visible"}
            for test in grade.tests
        ],
    }


def grades_csv(grades: list[Grade]) -> str:
    tracks = paths.in_course_order(track for grade in grades for track in grade.tracks)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", *tracks, "score", "max_score"])
    for grade in sorted(grades, key=lambda g: g.student):
        per_track = {track: sum(t["score"] for t in grade.tests if t["track"] == track) for track in tracks}
        writer.writerow([grade.student, *(f"{per_track[t]:g}" if t in grade.tracks else "" for t in tracks),
                         f"{grade.score:g}", f"{grade.max_score:g}"])
    return buffer.getvalue()
