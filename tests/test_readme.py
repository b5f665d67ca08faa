"""The README's Python snippets work when copied, in order, as a new user would paste them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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
