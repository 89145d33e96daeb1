"""Reading and writing notebooks with Jupytext (imported lazily: it is slow to import)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import nbformat


def _config():
    from jupytext.config import JupytextConfiguration

    # Also written into every script's header, so that Jupyter keeps students' files as clean.
    return JupytextConfiguration(
        notebook_metadata_filter="-jupytext.text_representation",
        cell_metadata_filter="nbgrader,-all",
    )


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """A percent script or a notebook, as a notebook."""
    import jupytext

    return jupytext.read(path)


def to_percent(notebook: nbformat.NotebookNode) -> str:
    import jupytext

    return jupytext.writes(notebook, "py:percent", config=_config())


def to_ipynb(notebook: nbformat.NotebookNode) -> str:
    """Notebook JSON without outputs, with stable cell ids (nbgrader's `grade_id` where there is one)."""
    import jupytext
    import nbformat

    notebook = nbformat.from_dict(notebook)
    for index, cell in enumerate(notebook.cells):
        cell.id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell-{index}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return jupytext.writes(notebook, "ipynb", config=_config())


def exercise_name(cell: nbformat.NotebookNode) -> str | None:
    """The nbgrader `grade_id` of a solution cell (an exercise), else None."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if meta.get("solution") else None
