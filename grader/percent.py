"""Cells of a Jupytext percent script or a notebook, read without importing Jupyter (fast, for tests).

A cell starts at a line `# %%`; a solution cell carries its nbgrader metadata there:
`# %% nbgrader={"grade_id": "forward_noise", "solution": true, ...}`.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

_MARKER = re.compile(r"^# %%")
_NBGRADER = re.compile(r"\bnbgrader=")


@dataclass(frozen=True)
class Cell:
    first_line: int  # 1-based line of the cell's first line in the file
    source: str
    nbgrader: dict = field(default_factory=dict)

    @property
    def exercise(self) -> str | None:
        """The nbgrader `grade_id` of a solution cell (an exercise), else None."""
        return self.nbgrader.get("grade_id") if self.nbgrader.get("solution") else None


def read_cells(text: str) -> list[Cell]:
    """Split a percent script into cells (the part before the first marker is a cell too)."""
    chunks: list[tuple[int, list[str]]] = [(1, [])]
    for number, line in enumerate(text.splitlines(), start=1):
        if _MARKER.match(line):
            chunks.append((number, []))
        chunks[-1][1].append(line)
    return [Cell(first, "\n".join(lines), _nbgrader_metadata(lines[0] if lines else ""))
            for first, lines in chunks]


def notebook_cells(path: Path) -> list[Cell]:
    """The code cells of a notebook, numbered as in the percent script Jupytext would write.

    IPython magics and shell escapes (`%matplotlib`, `!pip`) become comments, as Jupytext
    makes them. Raises ValueError for a file that is not a notebook.
    """
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        raw_cells = [c for c in notebook["cells"] if c.get("cell_type") == "code"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a readable notebook: {error}") from None
    cells, line = [], 1
    for raw in raw_cells:
        source = raw.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        lines = [f"# {text}" if text.lstrip().startswith(("%", "!")) else text for text in source.splitlines()]
        metadata = raw.get("metadata", {}).get("nbgrader", {})
        cells.append(Cell(line, "\n".join(["# %%", *lines]), metadata if isinstance(metadata, dict) else {}))
        line += len(lines) + 2  # the marker line, and a blank line after the cell
    return cells


def _nbgrader_metadata(marker: str) -> dict:
    found = _NBGRADER.search(marker) if _MARKER.match(marker) else None
    if found is None:
        return {}
    value, _ = json.JSONDecoder().raw_decode(marker, found.end())
    return value


@dataclass(frozen=True)
class Exercise:
    """A graded exercise: one solution cell, and the names it defines."""

    name: str
    names: tuple[str, ...]


def exercises(script: Path) -> list[Exercise]:
    """The exercises of a reference script, in order."""
    cells = read_cells(script.read_text(encoding="utf-8"))
    return [Exercise(c.exercise, tuple(defined_names(c.source))) for c in cells if c.exercise]


def defined_names(source: str) -> list[str]:
    """Top-level functions, classes and variables that a piece of code defines."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def imported_modules(source: str) -> set[str]:
    """The modules a script's top-level imports name (`import a.b` gives `a.b`)."""
    found = set()
    for cell in read_cells(source):
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return found
