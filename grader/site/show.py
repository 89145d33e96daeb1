"""What the site's model cards and benchmarks page display: recorded figures as tables.

The figures come from the files the benchmark scripts write (`benchmarks/results/*.json`)
and from the shipped models' metadata, so that no number is typed twice.
"""

from __future__ import annotations

import html

from IPython.display import HTML, Markdown, display


def recorded(name: str) -> dict | None:
    """The figures `benchmarks/<name>.py` last wrote, or None (the site builds from a checkout,
    whose root is on the path, as for the benchmark scripts themselves)."""
    from benchmarks import results

    return results.load(name)


def _cell(value) -> str:
    if isinstance(value, float):
        text = f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    else:
        text = "" if value is None else str(value)
    return html.escape(text)


def html_table(columns: list[str], rows: list[list], title: str = "", note: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    after = f"<p class='table-note'>{html.escape(note)}</p>" if note else ""
    return f"<table class='table'>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{after}"


def benchmark(name: str, only: list[str] | None = None) -> None:
    """Display a benchmark's recorded tables (those whose titles start with one of `only`)."""
    result = recorded(name)
    if result is None:
        display(Markdown(f"*Not recorded yet:* run `uv run python benchmarks/{name}.py` to write "
                         f"`benchmarks/results/{name}.json`."))
        return
    machine = result.get("machine", {})
    display(Markdown(f"`{result['command']}`, recorded {result['recorded'][:10]} on "
                     f"{machine.get('cpus', '?')} CPUs ({machine.get('device', '?')}, JAX {machine.get('jax', '?')})"
                     + (f": {result['summary']}" if result.get("summary") else "")))
    for table in result["tables"]:
        if only is None or any(table["title"].startswith(prefix) for prefix in only):
            display(HTML(html_table(table["columns"], table["rows"], table["title"], table.get("note", ""))))


def key_values(pairs: dict) -> None:
    """A two-column table of settings (a model's architecture, its training run)."""
    display(HTML(html_table(["", ""], [[key, value] for key, value in pairs.items()])))
