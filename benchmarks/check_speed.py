"""How long a student waits for a check: a check cell in a warm kernel, and `grader check`.

1. For every exercise of every track, in a Jupyter kernel (one per notebook) holding the
   notebook's definitions with the reference answers: run the set-up cell, then the
   exercise's check cell once to warm up and 5 more times; the median of those 5 wall times
   (as the notebook's client sees them) is the exercise's figure. The answer is not edited
   between the runs, so its compiled programs are reused: a check right after editing the
   exercise's cell compiles once more (from the on-disk cache where the code is unchanged).
2. `uv run grader check TRACK/EXERCISE` in a terminal, once to warm up (which starts the warm
   check server, `grader.check_server`; the benchmark waits until it is ready) and 5 more
   times; then the same without the server, a process of its own per check, for comparison.

Targets: check cells <= 1 s median over all exercises and <= 3 s for the slowest;
`grader check` <= 3 s.

    uv run python benchmarks/check_speed.py [--tracks diffusion] [--command diffusion/reverse_step]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.results import Table, save
from grader import check_cells, check_server, paths, percent

REPEATS = 5
TARGET_MEDIAN_S, TARGET_SLOWEST_S, TARGET_COMMAND_S = 1.0, 3.0, 3.0


def run_in_kernel(client, code: str) -> float:
    """Execute `code` in the kernel; return the wall time. Raises if the cell raised."""
    start = time.perf_counter()
    reply = client.execute_interactive(code, timeout=600, output_hook=lambda message: None)
    elapsed = time.perf_counter() - start
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r} failed in the kernel: {reply['content'].get('evalue')}")
    return elapsed


def time_check_cells(track: str, script: Path) -> dict[str, float]:
    """Each exercise's median check-cell time in a warm kernel, answers from the reference."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", env={**os.environ, "MPLBACKEND": "Agg"})
    try:
        run_in_kernel(client, "from grader import loader\n"
                              f"globals().update(vars(loader.load_script({str(script)!r}).module))")
        run_in_kernel(client, check_cells.setup_cell(track, script.stem).source)
        medians = {}
        for exercise in percent.exercises(script):
            cell = check_cells.check_cell(exercise.name).source
            code = f"_result = {cell}\nassert _result.passed, _result"
            run_in_kernel(client, code)  # warm-up: imports, first compilation
            medians[exercise.name] = statistics.median(run_in_kernel(client, code) for _ in range(REPEATS))
        return medians
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def time_command(what: str, server: bool) -> tuple[float, float]:
    """`grader check WHAT`: the first run's wall time and the median of the next REPEATS, with the
    warm check server (`grader.check_server`) or, `server=False`, a process of its own per check."""
    uv = shutil.which("uv")
    command = [uv, "run", "grader", "check", what] if uv else [sys.executable, "-m", "grader.cli", "check", what]
    env = {**os.environ, check_server.ENABLED_VARIABLE: "1" if server else "0"}
    times = []
    for attempt in range(REPEATS + 1):
        start, started = time.perf_counter(), time.time()
        subprocess.run([*command, "--target", "solutions"], cwd=paths.REPO_ROOT, env=env, check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
        if server and not attempt:  # the first check started the server: wait until it is ready
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not any(
                    p.stat().st_mtime >= started for p in check_server.folder().glob("*.pid")):
                time.sleep(0.5)
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", nargs="*", default=paths.tracks())
    parser.add_argument("--command", default="diffusion/reverse_step", help="what `grader check` is timed on")
    args = parser.parse_args()

    figures = {}
    for track in args.tracks:
        for script in paths.solution_scripts(track):
            for exercise, seconds in time_check_cells(track, script).items():
                figures[f"{track}/{script.stem} {exercise}"] = seconds
                print(f"  {track}/{script.stem} {exercise:32s} {seconds:6.2f} s", flush=True)
    first_s, command_s = time_command(args.command, server=True)
    _, without_server_s = time_command(args.command, server=False)

    median = slowest = None
    rows = []
    if figures:  # `--tracks` with no track: only `grader check` is timed
        median = statistics.median(figures.values())
        slowest_name, slowest = max(figures.items(), key=lambda kv: kv[1])
        print(f"\nCheck cells, warm kernel, median of {REPEATS} per exercise ({len(figures)} exercises):")
        print(f"  median over all exercises {median:5.2f} s   (target <= {TARGET_MEDIAN_S:g} s)")
        print(f"  slowest                   {slowest:5.2f} s   (target <= {TARGET_SLOWEST_S:g} s): {slowest_name}")
        rows = [[f"check cell, median over {len(figures)} exercises", median, TARGET_MEDIAN_S],
                [f"check cell, slowest ({slowest_name})", slowest, TARGET_SLOWEST_S]]
    print(f"`grader check {args.command}`, warm, median of {REPEATS}: {command_s:5.2f} s "
          f"(target <= {TARGET_COMMAND_S:g} s)")
    print(f"  the first check of a session (it starts the check server): {first_s:5.2f} s")
    print(f"  without the check server (GRADER_CHECK_SERVER=0), warm:    {without_server_s:5.2f} s")
    rows += [[f"`grader check {args.command}`, warm", command_s, TARGET_COMMAND_S],
             ["`grader check`, the first of a session (starts the check server)", first_s, None],
             ["`grader check`, warm, without the check server", without_server_s, None]]
    cells = "" if median is None else f"check cells median {median:.2f} s, slowest {slowest:.2f} s; "
    save("check_speed", [Table("How long a student waits for a check", ["check", "time (s)", "target (s)"], rows,
                               note=f"median of {REPEATS} runs after a warm-up; check cells in a warm kernel "
                                    "holding the reference answers")],
         summary=f"{cells}`grader check` warm {command_s:.2f} s ({without_server_s:.2f} s without the server)",
         figures={"check_cells_s": figures, "median_s": median, "slowest_s": slowest,
                  "grader_check_s": {args.command: command_s}, "first_check_s": first_s,
                  "without_server_s": without_server_s})


if __name__ == "__main__":
    main()
