"""`grader grade --scheduler ADDRESS`: each submission is a task on a Dask distributed cluster.

The task carries the submission's files (its `.py` and `.ipynb`, a few hundred kB), so
workers need no shared file system, only the same installation of the course: each
worker grades in its own trusted process with the same sandbox as `grader grade` on one
machine, and returns the `Grade`. Only the process that called `grade_all` writes `--out`.
A worker lost mid-submission (killed, pre-empted) loses nothing: the scheduler runs its
task again on another worker (Dask's `allowed-failures`, 3 by default).

Start a cluster with `dask scheduler` and `dask worker ADDRESS --nthreads 1` on each
machine, or with dask-jobqueue (Slurm) or dask-kubernetes; see docs/grading.md.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from grader import grading, paths
from grader.reports import Grade

GRADED_SUFFIXES = {".py", ".ipynb"}


def pack(root: Path) -> dict[str, bytes]:
    """A submission's gradable files, by path relative to its folder."""
    return {str(file.relative_to(root)): file.read_bytes() for file in sorted(root.rglob("*"))
            if file.suffix in GRADED_SUFFIXES and file.is_file()}


def grade_packed(student: str, files: dict[str, bytes], tracks: list[str], fingerprint: str,
                 settings: grading.Settings, library: str) -> Grade:
    """On a worker: unpack the files into a private folder and grade them (`library`: the caller's course)."""
    if paths.library_digest() != library:
        raise RuntimeError("this worker's course or grader differs from the one that sent the submission: "
                           "install the same version on every worker")
    with tempfile.TemporaryDirectory(prefix="grader-submission-") as folder:
        for name, content in files.items():
            path = Path(folder) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        grade = grading.grade(grading.Submission(student, Path(folder)), tracks, fingerprint, settings)
    return grade


class ClusterRunner:
    """Submits gradings to a Dask cluster; the same small interface as `grading.LocalRunner`."""

    def __init__(self, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise RuntimeError("--scheduler needs Dask's `distributed`: install the course with its `cluster` "
                               "extra (uv sync --extra cluster)") from None
        self.client = Client(address, timeout="30s")

    def submit(self, submission: grading.Submission, tracks: list[str], fingerprint: str,
               settings: grading.Settings):
        return self.client.submit(grade_packed, submission.student, pack(submission.root), tracks, fingerprint,
                                  settings, paths.library_digest(), pure=False,
                                  key=f"grade-{submission.student}-{uuid.uuid4().hex[:8]}")

    def as_completed(self, futures):
        from distributed import as_completed

        return as_completed(futures)

    def warm_up(self, future) -> None:
        """Nothing to wait for: each worker compiles for itself."""

    def stop(self) -> None:
        self.client.close()
