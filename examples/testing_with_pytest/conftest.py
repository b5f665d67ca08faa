"""Tests send nothing unless they ask: the app's handlers are built with SEGMENT_SEND=0."""

from __future__ import annotations

import os

os.environ.setdefault("SEGMENT_SEND", "0")  # before the app is imported: no write key needed
