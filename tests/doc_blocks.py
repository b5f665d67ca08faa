"""The Python code blocks of README.md and docs/*.md, each with the marker that says who runs it.

Every Python block is preceded by an HTML comment (invisible on GitHub, PyPI and the docs site):

- ``<!-- test: run NAME -->``: the block runs in a fresh Python process named NAME, after the
  earlier blocks of the same page marked with the same NAME, in page order, against the fake
  Segment (``YOUR_WRITE_KEY`` becomes its key, ``SEGMENT_HOST`` its URL), in a directory holding
  the files the page shows with a title (```` ```ini title="logging.ini" ````): tests/test_docs.py.
- ``<!-- test: pytest -->``: the block is a test module; tests/test_pytest_plugin.py runs it with
  pytest and the plugin, and every ``def test_`` in it must pass.
- ``<!-- test: framework MODULE -->``: the block needs a framework app around it; the tests of
  ``MODULE`` (a ``segment_logging.contrib`` module) run it through ``framework_snippets()``.
- ``<!-- test: skip REASON -->``: deliberately not run, for the REASON given (it is still compiled).

A Python block without a marker fails tests/test_docs.py, so no block goes unchecked by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("run", "pytest", "framework", "skip")
PYTHON_LANGUAGES = ("python", "py", "python3", "pycon")

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
_MARKER = re.compile(r"<!--[ \t]*test:[ \t]*(?P<kind>[^\s>]+?)(?:[ \t]+(?P<arg>[^\n]*?))?[ \t]*-->\s*\Z")


@dataclass(frozen=True)
class Block:
    """One Python code block, where it is, and what its marker says."""

    page: str  # relative to the repository: "README.md", "docs/testing.md"
    line: int  # of the opening fence, 1-based
    kind: str | None  # one of KINDS; None when the marker is missing or unreadable
    arg: str  # the group's name, the module, or the reason; "" when none
    code: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md and every page of the docs site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def blocks(path: Path) -> list[Block]:
    """The Python blocks of one page, in order, each with its marker."""
    text = path.read_text(encoding="utf-8")
    found: list[Block] = []
    for fence in _FENCE.finditer(text):
        language = fence["info"].strip().split(" ")[0].lower()
        if language not in PYTHON_LANGUAGES:
            continue
        indent = fence["indent"]
        code = "\n".join(line.removeprefix(indent) for line in fence["code"].split("\n"))
        marker = _MARKER.search(text[: fence.start()].rstrip() + "\n")
        kind = marker["kind"] if marker else None
        found.append(
            Block(
                page=path.relative_to(ROOT).as_posix(),
                line=text.count("\n", 0, fence.start()) + 1,
                kind=kind if kind in KINDS else None,
                arg=(marker["arg"] or "").strip() if marker else "",
                code=code,
            )
        )
    return found


def files(path: Path) -> dict[str, str]:
    """The code blocks of a page with a ``title="NAME"`` (a file the page has you write), by NAME."""
    text = path.read_text(encoding="utf-8")
    titled: dict[str, str] = {}
    for fence in _FENCE.finditer(text):
        title = re.search(r'title="([^"]+)"', fence["info"])
        if title:
            titled[title[1]] = fence["code"]
    return titled


def all_blocks() -> list[Block]:
    """Every Python block of README.md and docs/, page by page."""
    return [block for path in pages() for block in blocks(path)]


def run_groups() -> dict[tuple[str, str], list[Block]]:
    """The ``run`` blocks by (page, NAME), each list in page order."""
    groups: dict[tuple[str, str], list[Block]] = {}
    for block in all_blocks():
        if block.kind == "run":
            groups.setdefault((block.page, block.arg), []).append(block)
    return groups
