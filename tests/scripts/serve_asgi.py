"""Serve ``asgi_app:app`` the way it runs in production: ``serve_asgi.py SERVER PORT``.

SERVER is ``uvicorn`` (one process), ``uvicorn-workers`` (``--workers 2``) or
``gunicorn`` (gunicorn with ``uvicorn.workers.UvicornWorker``, two workers).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    server, port = sys.argv[1], sys.argv[2]
    if server == "gunicorn":
        argv = ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", f"127.0.0.1:{port}"]
        os.execvp(sys.executable, [sys.executable, "-m", *argv, "--log-level", "warning", "asgi_app:app"])
    import uvicorn

    uvicorn.run(
        "asgi_app:app",
        host="127.0.0.1",
        port=int(port),
        workers=2 if server == "uvicorn-workers" else None,
        log_level="warning",
    )
