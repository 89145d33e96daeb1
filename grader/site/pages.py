"""The site's Sphinx source tree, staged from the one source.

A chapter page is the student's notebook with the reference answers typed in: the markdown,
math, code and demos of `solutions/<track>/NN_topic.py`, plus its check cells, which run (the
build proves they pass) but are not shown. The guides, model cards and the benchmarks page
come from `docs/`. Files are rewritten only when their content changes, so that Sphinx
rebuilds only what changed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader import check_cells, nbgrader_course, notebooks, paths, percent

DOCS = paths.REPO_ROOT / "docs"
GUIDES = ("students", "instructors", "grading", "nbgrader")
HIDDEN = ("remove-cell",)  # MyST-NB's tag: the cell runs, the page does not show it
SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.MULTILINE)
TRACK_TITLES = {"warmup": "Warm-up: JAX itself", "diffusion": "Diffusion models", "attention": "Attention",
                "astro": "Galaxies: diffusion for astronomy", "protein": "Protein language models",
                "scaling": "Scaling out: many devices", "numerics": "Differentiable numerics"}


@dataclass(frozen=True)
class Chapter:
    track: str
    stem: str  # NN_topic

    @property
    def docname(self) -> str:
        return f"{self.track}/{self.stem}"

    @property
    def script(self) -> Path:
        return paths.SOLUTIONS / self.track / f"{self.stem}.py"

    @property
    def exercise_notebook(self) -> Path:
        return paths.EXERCISES / self.track / f"{self.stem}.ipynb"

    @property
    def visible_tests(self) -> Path:
        return paths.EXERCISES / self.track / f"test_{self.stem}.py"


def chapters(tracks: list[str] | None = None) -> list[Chapter]:
    """Every chapter, in course order."""
    return [Chapter(track, script.stem) for track in (tracks or paths.tracks())
            for script in paths.solution_scripts(track)]


def answered_exercise_notebook(chapter: Chapter) -> nbformat.NotebookNode:
    """The student's notebook (set-up and check cells included) with the reference answers typed in."""
    return nbgrader_course.answered(notebooks.read_notebook(chapter.exercise_notebook),
                                    notebooks.read_notebook(chapter.script))


def hidden_on_the_page(cell: nbformat.NotebookNode, chapter: Chapter) -> bool:
    """The set-up cell or a check cell: the student's tools, not the chapter."""
    setup = check_cells.setup_cell(chapter.track, chapter.stem).source
    return check_cells.is_check_cell(cell) or (cell.cell_type == "code" and cell.source == setup)


def chapter_page(chapter: Chapter) -> nbformat.NotebookNode:
    """The chapter's notebook as the site executes and shows it."""
    notebook = answered_exercise_notebook(chapter)
    for cell in notebook.cells:
        cell.source = SOLUTION_MARKERS.sub("", cell.source)
        if hidden_on_the_page(cell, chapter):
            cell.metadata["tags"] = [*cell.metadata.get("tags", []), *HIDDEN]
    title_at = next((i for i, cell in enumerate(notebook.cells)
                     if cell.cell_type == "markdown" and cell.source.startswith("# ")), None)
    if title_at is None:
        raise ValueError(f"{paths.relative(chapter.script)} must start with a `# Title` markdown cell")
    notebook.cells.insert(title_at + 1, nbformat.v4.new_markdown_cell(_work_on_it(chapter)))
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"
    notebook.metadata.pop("jupytext", None)
    return notebook


def _work_on_it(chapter: Chapter) -> str:
    exercises = [exercise.name for exercise in percent.exercises(chapter.script)]
    checks = "\n".join(f"uv run grader check {chapter.track}/{name}" for name in exercises)
    return f"""```{{admonition}} Do this chapter yourself
:class: tip
This page shows the worked answers. To write them yourself, download the exercise notebook
{{download}}`{chapter.stem}.ipynb <_files/{chapter.stem}.ipynb>` (it is also
`exercises/{chapter.track}/{chapter.stem}.ipynb` in the course) and its visible tests
{{download}}`test_{chapter.stem}.py <_files/test_{chapter.stem}.py>`. Each exercise is followed by a
check cell, `check("{exercises[0]}")`, that runs its checks in the notebook. From a terminal:

    {checks.replace(chr(10), chr(10) + "    ")}
    uv run pytest exercises/{chapter.track}/test_{chapter.stem}.py

Exercises here: {", ".join(f"`{name}`" for name in exercises)}.
```"""


def track_summaries() -> dict[str, str]:
    """What each track builds, from the README's table of tracks (its one source)."""
    table = (paths.REPO_ROOT / "README.md").read_text(encoding="utf-8").split("| track | what you build |", 1)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("| `"):
            break
        name, text = line.strip("| ").split(" | ", 1)
        rows[name.strip("`")] = text.rstrip(" |")
    return rows


def track_page(track: str, summary: str, stems: list[str]) -> str:
    lines = [f"# {TRACK_TITLES.get(track, track)}", "", summary, "", "```{toctree}", ":maxdepth: 1", "", *stems]
    return "\n".join([*lines, "```", ""])


def home_page(tracks: list[str], summaries: dict[str, str]) -> str:
    rows = "\n".join(f"| [{TRACK_TITLES.get(t, t)}]({t}/index.md) | {summaries.get(t, '')} |" for t in tracks)
    models = sorted(p.stem for p in (DOCS / "models").glob("*.md"))
    return f"""# JAX and Generative AI for Science

Learn JAX and generative models by writing the key pieces yourself: forward noising, the
reverse step, score losses, attention, samplers. Each chapter below is a notebook with its
math, code and figures, worked out; its exercise version checks your answers as you go, on a
laptop CPU in seconds. Start with the [student guide](guides/students.md).

| track | what you build |
| --- | --- |
{rows}

```{{toctree}}
:caption: Tracks
:hidden:
{chr(10).join(f"{t}/index" for t in tracks)}
```

```{{toctree}}
:caption: Guides
:hidden:
{chr(10).join(f"guides/{g}" for g in GUIDES if (DOCS / f"{g}.md").exists())}
```

```{{toctree}}
:caption: Models and measurements
:hidden:
{chr(10).join(f"models/{m}" for m in models)}
benchmarks
```
"""


def stage(source: Path, tracks: list[str] | None = None) -> list[Chapter]:
    """Write the Sphinx source tree into `source`; remove what is no longer part of it."""
    tracks = tracks or paths.tracks()
    written: set[Path] = set()

    def put(relative: str, content: str | bytes) -> None:
        target = source / relative
        written.add(target)
        data = content.encode("utf-8") if isinstance(content, str) else content
        if not target.exists() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    put("conf.py", (Path(__file__).parent / "conf.py").read_bytes())
    put("_static/mathjax/tex-svg-full.js", _mathjax_file().read_bytes())
    staged, summaries = chapters(tracks), track_summaries()
    for chapter in staged:
        put(f"{chapter.docname}.ipynb", nbformat.writes(chapter_page(chapter)) + "\n")
        put(f"{chapter.track}/_files/{chapter.stem}.ipynb", chapter.exercise_notebook.read_bytes())
        put(f"{chapter.track}/_files/test_{chapter.stem}.py", chapter.visible_tests.read_bytes())
    for track in tracks:
        stems = [chapter.stem for chapter in staged if chapter.track == track]
        put(f"{track}/index.md", track_page(track, summaries.get(track, ""), stems))
    put("index.md", home_page(tracks, summaries))
    for guide in GUIDES:
        if (DOCS / f"{guide}.md").exists():
            put(f"guides/{guide}.md", (DOCS / f"{guide}.md").read_bytes())
    for page in [*(DOCS / "models").glob("*.md"), DOCS / "benchmarks.md"]:
        if page.exists():
            put(str(page.relative_to(DOCS)), page.read_text(encoding="utf-8") + _recorded_figures_cell())
    for stale in [p for p in source.rglob("*") if p.is_file() and p not in written]:
        stale.unlink()
    return staged


def _recorded_figures_cell() -> str:
    """A hidden cell naming the digest of the recorded figures (benchmark results, model
    metadata), so that a page showing them runs again when they change, not only its code."""
    recorded = sorted([*(paths.REPO_ROOT / "benchmarks" / "results").glob("*.json"),
                       *(paths.REPO_ROOT / "course" / "pretrained").glob("*.json")])
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in recorded)).hexdigest()[:16]
    return f"\n```{{code-cell}} ipython3\n:tags: [remove-cell]\n# recorded figures: {digest}\n```\n"


def _mathjax_file() -> Path:
    import mathjax  # django-static-mathjax: MathJax 3's files as package data

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-svg-full.js"

