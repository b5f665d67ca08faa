"""MkDocs hooks for the docs site (mkdocs.yml names this file under ``hooks``).

The package's docstrings cross-reference with Sphinx roles (``:class:`Batch```), which read well
in an editor and in ``help()``; mkdocstrings renders them as text, ``:class:`` included. This hook
drops the role and keeps the name as code (``~a.b.C`` shows ``C``, as Sphinx would), so the
docstrings need no second syntax.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:func|class|meth|attr|exc|data|mod|obj):<code>(?P<tilde>~)?(?P<name>[^<]*)</code>")


def _plain(match: re.Match[str]) -> str:
    name = match["name"].rsplit(".", 1)[-1] if match["tilde"] else match["name"]
    return f"<code>{name}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """The page's HTML without Sphinx role markers in front of inline code."""
    return _ROLE.sub(_plain, html)
