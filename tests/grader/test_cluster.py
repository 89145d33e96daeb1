"""`grader grade --scheduler`: a class graded on a Dask cluster, one of whose workers is killed mid-run."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from grader import grading, remote

BAD = Path(__file__).parent / "bad_submissions"
CLASS = {"good": 10, "nan": 7, "wrong_shape": 8, "good_too": 10}
pytestmark = pytest.mark.xdist_group("grade")


def kill_a_busy_worker(client, killed: list[str], deadline: float) -> None:
    """Once some worker is grading, kill its process (the nanny starts a fresh one)."""
    while time.monotonic() < deadline and not killed:
        busy = [worker for worker, tasks in client.processing().items() if tasks]
        if busy:
            time.sleep(2.0)  # well into that submission's tests
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(busy[0])
        time.sleep(0.1)


@pytest.mark.slow
def test_a_class_graded_on_a_cluster_survives_a_lost_worker(tmp_path):
    from distributed import Client, LocalCluster

    submissions = tmp_path / "class"
    for student in CLASS:
        shutil.copytree(BAD / student.removesuffix("_too"), submissions / student)
    out = tmp_path / "grades"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as watcher:
        killed: list[str] = []
        killer = threading.Thread(target=kill_a_busy_worker, args=(watcher, killed, time.monotonic() + 300))
        killer.start()
        grades = grading.grade_all([submissions], out, tracks=["diffusion"], scheduler=cluster.scheduler_address,
                                   limits=remote.Limits(per_test_s=60, total_s=300), progress=False)
        killer.join()
    assert killed  # a worker was lost mid-submission ...
    assert {grade.student: grade.score for grade in grades} == CLASS  # ... and nobody's grade was
    rows = (out / "grades.csv").read_text().splitlines()
    assert sorted(rows[1:]) == sorted(f"{student},{score},{score},62" for student, score in CLASS.items())


def test_without_distributed_installed_the_scheduler_option_says_what_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(RuntimeError, match="cluster` extra"):
        grading.grade_all([BAD / "good"], tmp_path, tracks=["diffusion"], scheduler="tcp://127.0.0.1:1",
                          progress=False)
