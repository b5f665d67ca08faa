"""Publish COUNT ``signup`` tasks to ``celery_app``, wait for their results: ``celery_publish.py COUNT``."""

from __future__ import annotations

import sys

from celery_app import signup

if __name__ == "__main__":
    results = [signup.delay(index) for index in range(int(sys.argv[1]))]
    assert sorted(result.get(timeout=60) for result in results) == list(range(int(sys.argv[1])))
    print("done", flush=True)
