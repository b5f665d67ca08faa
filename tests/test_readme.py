"""The README's Python snippets work when copied, in order, as a new user would paste them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from segment_logging.testing import SegmentServer

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_core_snippets_run_against_the_fake_segment(server: SegmentServer) -> None:
    """The snippets before the structlog section run in one process and their events arrive.

    The only edit is the write key: YOUR_WRITE_KEY becomes the fake server's, and
    SEGMENT_HOST points the handlers at it.
    """
    core = README.read_text().split("## structlog")[0]
    script = "\n\n".join(_python_blocks(core)) + "\n\ntest_signup_is_tracked()\nprint('snippets ok')\n"
    script = script.replace("YOUR_WRITE_KEY", server.write_key)
    env = {**os.environ, "SEGMENT_HOST": server.url}
    env.pop("SEGMENT_WRITE_KEY", None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "snippets ok" in done.stdout
    events = {m.get("event") or m["type"] for m in server.messages}
    assert {"Signup", "identify", "page", "group", "alias", "Upgraded"} <= events


def _standalone_snippets(section: str) -> list[str]:
    """Python blocks of a section, a block that does not start with an import joined to the one before."""
    snippets: list[str] = []
    for block in _python_blocks(section):
        if snippets and not block.startswith(("import", "from")):
            snippets[-1] += "\n" + block
        else:
            snippets.append(block)
    return snippets


def _later_sections() -> list[str]:
    text = README.read_text()
    later = text[text.index("## structlog") : text.index("## Performance")]
    return _standalone_snippets(later)


def test_later_snippets_exist() -> None:
    """The structlog and seed sections have snippets to check."""
    assert len(_later_sections()) >= 6


def test_structlog_and_seed_snippets_each_run(server: SegmentServer) -> None:
    """Each structlog and seed-API snippet runs on its own, as pasted into a new file."""
    pytest.importorskip("structlog", reason="the structlog extra is not installed")
    env = {**os.environ, "SEGMENT_HOST": server.url}
    env.pop("SEGMENT_WRITE_KEY", None)
    for snippet in _later_sections():
        done = subprocess.run(
            [sys.executable, "-c", snippet.replace("YOUR_WRITE_KEY", server.write_key)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, f"{snippet}\n---\n{done.stderr}"
    assert len(server.messages) > 200
