"""`grader gradescope`: the autograder zip for a Gradescope programming assignment.

The zip holds `setup.sh` (run once when Gradescope builds the image: installs uv, Python
and this course with its locked dependencies), `run_autograder` (run per submission:
`grader grade` on /autograder/submission, then copies the Gradescope `results.json` into
/autograder/results/) and the course itself: the library, the grader with its hidden
suites, and the reference solutions. Students upload their `NN_topic.ipynb` or `.py`
files; the same hidden tests as `grader grade` score them.
"""

from __future__ import annotations

import shlex
import zipfile
from pathlib import Path

from grader import paths

INCLUDED = ["pyproject.toml", "uv.lock", "README.md", "course", "grader", "solutions"]
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints"}

SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, to build the autograder image.
set -euo pipefail
cd /autograder/source
curl -LsSf https://astral.sh/uv/install.sh | sh
export PATH="$HOME/.local/bin:$PATH"
uv sync --locked --no-dev
"""

RUN = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission. (GRADER may name another command, for testing.)
set -uo pipefail
AUTOGRADER="${{AUTOGRADER:-/autograder}}"
GRADER="${{GRADER:-$AUTOGRADER/source/.venv/bin/grader}}"
# Each submission has a container of its own here. Where that container cannot make the
# grader's sandbox (no namespaces), grade without it, and say so in the grader's log.
UNSAFE=""
if ! $GRADER sandbox; then
  UNSAFE="--unsafe"
fi
$GRADER grade "$AUTOGRADER/submission" --out "$AUTOGRADER/results/grader" {tracks}--jobs 1 --force $UNSAFE
STUDENT="$(basename "$AUTOGRADER/submission")"
if [ -f "$AUTOGRADER/results/grader/$STUDENT/results.json" ]; then
  cp "$AUTOGRADER/results/grader/$STUDENT/results.json" "$AUTOGRADER/results/results.json"
else
  echo '{{"score": 0, "output": "The grader could not run on this submission; please contact the course staff."}}' \\
    > "$AUTOGRADER/results/results.json"
fi
"""


def course_files() -> list[Path]:
    """The repository files the autograder needs, relative to the repository."""
    files = []
    for name in INCLUDED:
        path = paths.REPO_ROOT / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [p.relative_to(paths.REPO_ROOT) for p in candidates
                  if p.is_file() and not SKIPPED_PARTS & set(p.parts)]
    return files


def build_zip(destination: Path, tracks: list[str]) -> Path:
    """Write the autograder zip; `tracks` (may be empty: every track found) fixes what is graded."""
    for track in tracks:
        paths.solution_scripts(track)  # a clear error for an unknown track
    options = "".join(f"--track {shlex.quote(track)} " for track in tracks)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", SETUP), ("run_autograder", RUN.format(tracks=options))):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16  # executable
            archive.writestr(info, text)
        for file in course_files():
            archive.write(paths.REPO_ROOT / file, str(file))
    return destination
