"""The README's and the docs' Python blocks work when copied, as a new user would paste them.

Which block runs where is said by a marker before it (see tests/doc_blocks.py): this module runs
the ``run`` groups against the fake Segment, checks that no block lacks a marker, and checks the
README's links and size. The ``pytest`` blocks run in tests/test_pytest_plugin.py, the
``framework`` ones in the tests of their ``segment_logging.contrib`` module.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from doc_blocks import KINDS, ROOT, all_blocks, files, pages, run_groups

from segment_logging.testing import SegmentServer

CONTRIB_MODULES = {f"segment_logging.contrib.{name}" for name in ("celery", "django", "flask", "starlette")}

# What some groups must have delivered (event names, or the type for other calls), beyond exiting 0.
EXPECTED_EVENTS: dict[tuple[str, str], set[str]] = {
    ("README.md", "readme"): {"Signup", "identify", "Upgraded"},
    ("docs/index.md", "home"): {"Signup"},
    ("docs/getting-started.md", "quickstart"): {"Signup"},
    ("docs/logging-call.md", "calls"): {"Signup", "identify", "page", "group", "alias", "Upgraded"},
    ("docs/configuration.md", "config"): {"Signup"},
    ("docs/context.md", "bind"): {"Upgraded", "Invoice sent", "Viewed pricing"},
    ("docs/structlog.md", "processor"): {"Signup", "Upgraded"},
    ("docs/structlog.md", "bridge"): {"Signup"},
    ("docs/structlog.md", "both"): {"Signup", "Paid"},
    ("docs/batching.md", "batching"): {"Example Event", "Imported", "Example"},
    ("docs/operations.md", "fork"): {"Job done"},
    ("docs/durable-delivery.md", "spool"): {"Signed Up"},
}

GROUPS = run_groups()


def test_every_python_block_has_a_marker() -> None:
    """Each Python block says how it is tested, so none is skipped silently."""
    unmarked = [block.where for block in all_blocks() if block.kind is None]
    assert not unmarked, f"Python blocks without a <!-- test: {'|'.join(KINDS)} ... --> marker: {unmarked}"


def test_markers_carry_their_argument() -> None:
    """A run group has a name, a framework block names its contrib module, a skip gives its reason."""
    wrong = [
        block.where
        for block in all_blocks()
        if (block.kind in ("run", "skip") and not block.arg)
        or (block.kind == "framework" and block.arg not in CONTRIB_MODULES)
        or (block.kind == "pytest" and block.arg)
    ]
    assert not wrong


def test_the_pages_have_blocks_to_run() -> None:
    """The parser finds the blocks: each kind that runs code is used; the README has runnable ones."""
    found = all_blocks()
    assert {"run", "pytest", "framework"} <= {block.kind for block in found}
    assert any(page == "README.md" for page, _ in GROUPS)
    assert len(found) >= 40
    assert set(EXPECTED_EVENTS) <= set(GROUPS)


def test_blocks_not_run_still_compile() -> None:
    """A block deliberately not run is at least valid Python."""
    for block in all_blocks():
        if block.kind == "skip":
            compile(block.code, block.where, "exec")


HAVE_STRUCTLOG = importlib.util.find_spec("structlog") is not None


def _needs_missing_structlog(group: tuple[str, str]) -> bool:
    """Whether the group's code uses structlog (an extra) where it is not installed."""
    return not HAVE_STRUCTLOG and any("structlog" in block.code for block in GROUPS[group])


@dataclass
class _Run:
    """One group's process, started with the others, and the fake Segment it sends to."""

    server: SegmentServer
    process: subprocess.Popen[str]


def _end(process: subprocess.Popen[str]) -> None:
    """Kill a process a failed test left running (a no-op once it has ended), and reap it."""
    process.kill()
    process.communicate()


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str], _Run]]:
    """The process of every run group this session tests, all started at once (most of their time
    is start-up and exit).

    The only edit to the code is the write key: YOUR_WRITE_KEY becomes the group's fake
    Segment's, and SEGMENT_HOST points the handlers and clients at it. Each process runs in
    a directory holding the files its page shows (a code block with a title, like logging.ini).
    """
    selected: set[tuple[str, str]] = {
        typing.cast("tuple[str, str]", item.callspec.params["group"])
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_run_group"
    }
    with contextlib.ExitStack() as stack:
        started: dict[tuple[str, str], _Run] = {}
        for group in sorted(selected):
            if _needs_missing_structlog(group):
                continue
            group_blocks = GROUPS[group]
            server = stack.enter_context(SegmentServer())
            workdir = tmp_path_factory.mktemp("docs")
            for name, text in files(ROOT / group[0]).items():
                (workdir / name).write_text(text.replace("YOUR_WRITE_KEY", server.write_key))
            script = "\n\n".join(block.code for block in group_blocks)
            env = {**os.environ, "SEGMENT_HOST": server.url}
            for name in ("SEGMENT_WRITE_KEY", "SEGMENT_SEND"):
                env.pop(name, None)
            process = subprocess.Popen(
                [sys.executable, "-c", script.replace("YOUR_WRITE_KEY", server.write_key)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=workdir,
            )
            stack.callback(_end, process)
            started[group] = _Run(server, process)
        yield started


@pytest.mark.parametrize("group", sorted(GROUPS), ids=lambda group: f"{group[0]}:{group[1]}")
def test_run_group(group: tuple[str, str], runs: dict[tuple[str, str], _Run]) -> None:
    """The group's blocks, joined in page order, run in a fresh process against the fake Segment."""
    if _needs_missing_structlog(group):
        pytest.skip("the structlog extra is not installed")
    run = runs[group]
    _, stderr = run.process.communicate(timeout=120)
    assert run.process.returncode == 0, f"{GROUPS[group][0].where}\n---\n{stderr}"
    # The process delivered at its exit, and the fake Segment records a batch before answering it.
    assert EXPECTED_EVENTS.get(group, set()) <= {m.get("event") or m["type"] for m in run.server.messages}


_LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)\s]*)?\)|^\[[^\]]+\]:\s*(?P<ref>\S+)", re.M)


def docs_url() -> str:
    """The docs site's address: pyproject's Documentation URL, which mkdocs.yml's site_url repeats."""
    documentation = re.search(
        r'^Documentation = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M
    )
    assert documentation is not None
    url = documentation[1]
    site_url = re.search(r"^site_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
    assert site_url is not None
    assert site_url[1] == url
    return url


def test_the_readme_links_only_to_addresses_that_work_on_pypi() -> None:
    """The README is also the PyPI description, where a relative link leads nowhere: each link is
    absolute, and each into the docs site names a page of docs/ (mkdocs serves NAME.md at NAME/)."""
    url = docs_url()
    wrong = []
    for link in _LINK.finditer((ROOT / "README.md").read_text(encoding="utf-8")):
        target = (link["target"] or link["ref"]).split("#")[0]
        if not re.match(r"https?://", target):
            wrong.append(f"relative: {target}")
        elif target.startswith(url):
            page = target[len(url) :].strip("/") or "index"
            if not (ROOT / "docs" / f"{page}.md").exists():
                wrong.append(f"no page docs/{page}.md: {target}")
    assert not wrong


def test_the_docs_link_to_pages_that_exist() -> None:
    """Every relative link of the docs pages names a file in the repository."""
    missing = []
    for path in pages():
        if path.name == "README.md":
            continue
        for link in _LINK.finditer(path.read_text(encoding="utf-8")):
            target = (link["target"] or link["ref"]).split("#")[0]
            if not target or re.match(r"[a-z]+:", target):
                continue
            if not (path.parent / target).exists():
                missing.append(f"{path.relative_to(ROOT)}: {target}")
    assert not missing


def test_the_readme_is_a_front_page() -> None:
    """The README (also the PyPI description) stays a front page of at most about 10 KB."""
    assert len((ROOT / "README.md").read_bytes()) <= 10_240


@pytest.mark.parametrize("page", ["README.md", "docs/performance.md"])
def test_the_benchmark_table_has_its_markers(page: str) -> None:
    """The benchmark writes its table between one start and one end marker, in that order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    start, end = "<!-- benchmark-table:start -->", "<!-- benchmark-table:end -->"
    assert text.count(start) == text.count(end) == 1
    assert text.index(start) < text.index(end)


@pytest.mark.parametrize(
    "module",
    [
        "segment_logging",
        "segment_logging.structlog",
        "segment_logging.testing",
        "segment_logging.e2e",
        *sorted(CONTRIB_MODULES),
    ],
)
def test_the_api_reference_lists_every_public_name(module: str) -> None:
    """docs/api.md renders each name of the module's __all__ (mkdocstrings reads the docstrings)."""
    pytest.importorskip(module)
    public = [name for name in importlib.import_module(module).__all__ if not name.startswith("__")]
    reference = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert [name for name in public if f"\n::: {module}.{name}\n" not in reference] == []


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the test command the README's Development section gives, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = "python -m pip install -e '.[dev]' && python -m pytest"
    assert f"```sh\n{command}\n```" in readme.split("## Development")[1]
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in [line.strip() for line in lines]
