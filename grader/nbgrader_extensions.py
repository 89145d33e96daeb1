"""nbgrader extensions so that one bad notebook costs only its own points.

Plain nbgrader gives up on a student's *whole assignment* when one notebook is not valid
JSON or kills its kernel, and a deleted test cell silently scores zero. The course's
`nbgrader_config.py` swaps in these three instead:

- `TolerantNotebookExporter`: an unreadable notebook is graded as an empty one (zero),
  with the reason written into it, and the student's other notebooks are graded as usual.
- `RestoreTestCells`: deleted autograder cells are put back after their exercise (or at the
  end), so a student's answers are graded whatever happened to the test cells.
- `KeepGoingExecute`: if the kernel dies or stops answering, that cell and every later
  test cell get an error output (zero points) instead of aborting the assignment; test
  cells before it keep their scores.

And for feedback, `ShortTestErrors`: an error in a test cell shows only its message, not
the traceback, whose context lines would quote the cell's hidden tests.
"""

from __future__ import annotations

import nbformat
from nbconvert.exporters import NotebookExporter
from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells


def _error(ename: str, evalue: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class TolerantNotebookExporter(NotebookExporter):
    """A NotebookExporter that turns an unreadable notebook into an empty one, with the reason."""

    def from_filename(self, filename, resources=None, **kw):
        try:
            with open(filename, encoding="utf-8") as file:
                notebook = nbformat.read(file, as_version=4)
        except Exception as error:  # not JSON, not a notebook, not UTF-8: grade what can be graded
            self.log.error("%s is not a readable notebook (%s): grading it as empty.", filename, error)
            notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
                f"**This notebook could not be read** ({type(error).__name__}: {error}), so none of it was graded."
            )])
            notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        return self.from_notebook_node(notebook, resources=resources, **kw)


class RestoreTestCells(OverwriteCells):
    """OverwriteCells that puts deleted grade cells back: after the cell before them, else at the end."""

    def preprocess(self, nb, resources):
        self.add_missing_cells = True
        return super().preprocess(nb, resources)

    def add_missing_grade_cells(self, nb, resources):
        source = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        order = [cell.name for cell in source.source_cells]
        solutions = {cell.name for cell in source.solution_cells}
        for grade_cell in source.grade_cells:
            present = {cell["metadata"]["nbgrader"]["grade_id"]: i for i, cell in enumerate(nb.cells)
                       if utils.is_grade(cell) or utils.is_solution(cell)}
            if grade_cell.name in present:
                continue
            self.log.warning("Cell %s was deleted: putting it back.", grade_cell.name)
            source_cell = source.source_cells[order.index(grade_cell.name)]
            restored = self.missing_cell_transform(source_cell, grade_cell.max_score,
                                                   is_solution=grade_cell.name in solutions)
            restored["id"] = grade_cell.name
            before = order[order.index(grade_cell.name) - 1] if order.index(grade_cell.name) else None
            nb.cells.insert(present[before] + 1 if before in present else len(nb.cells), restored)
        return nb, resources


class KeepGoingExecute(Execute):
    """nbgrader's Execute, except that a dead or unresponsive kernel zeroes the rest of the notebook."""

    def preprocess(self, nb, resources=None, km=None):
        self._lost_kernel = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if self._lost_kernel is not None:
            if cell.cell_type == "code":
                cell.outputs = [_error("NotRun", self._lost_kernel)] if utils.is_grade(cell) else []
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except Exception as error:  # DeadKernelError, a kernel that no longer answers, ...
            self.log.error("Cell %d stopped the kernel (%s); later test cells score zero.", index, error)
            cell.outputs.append(_error(type(error).__name__, f"The kernel stopped in this cell: {error}"))
            self._lost_kernel = f"Not run: the kernel stopped in an earlier cell ({type(error).__name__})."
            return cell, resources


class ShortTestErrors(NbGraderPreprocessor):
    """Replace the tracebacks of test cells' errors by their last line (the message)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell):
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
