"""The benchmarks' figures as JSON files, `benchmarks/results/<name>.json`, for the course site.

Each benchmark script prints its figures and passes the same figures to `save` as `Table`s
(and raw numbers for plots), so that no figure is typed twice. Floats are kept to 4
significant digits (more than any benchmark's run-to-run noise allows), NaN and infinities
become null. Nothing about the machine is recorded but its kind: no host name, no path.

    from benchmarks.results import Table, save
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SIGNIFICANT_DIGITS = 4


@dataclass(frozen=True)
class Table:
    """One table as the benchmark prints it: numbers as numbers, units in the column names."""

    title: str
    columns: list[str]
    rows: list[list[str | int | float | None]]
    note: str = ""


def save(name: str, tables: list[Table], *, summary: str = "", figures: dict | None = None) -> Path:
    """Write the figures of benchmark `name` (the script's stem) to `RESULTS_DIR/<name>.json`."""
    record = {
        "benchmark": name,
        "command": f"uv run python benchmarks/{name}.py {shlex.join(map(_portable, sys.argv[1:]))}".strip(),
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "summary": summary,
        "tables": [asdict(table) for table in tables],
        "figures": figures or {},
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(_plain(record), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"figures written to {path.relative_to(RESULTS_DIR.parent.parent)}")
    return path


def load(name: str) -> dict | None:
    """The figures saved by benchmark `name`; None when it has not been recorded."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _machine() -> dict:
    import jax  # here, so that `load` (the site) needs no JAX

    device = jax.devices()[0]
    return {"cpus": os.cpu_count(), "platform": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "jax": jax.__version__,
            "device": device.device_kind or device.platform}


def _portable(argument: str) -> str:
    """A command-line argument without this machine's paths: the checkout's and the home folder."""
    return argument.replace(f"{RESULTS_DIR.parent.parent}{os.sep}", "").replace(str(Path.home()), "~")


def _plain(value):
    """`value` with numpy and JAX numbers and arrays as plain ones, tuples as lists, floats rounded."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "tolist"):  # numpy and JAX scalars and arrays
        return _plain(value.tolist())
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(value) else None
    return value
