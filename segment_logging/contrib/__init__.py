"""Optional glue for web frameworks and task queues: each module binds who the user is.

Each module imports its framework when you import the module, never before, so
none of these frameworks is a dependency of segment-logging:

- ``segment_logging.contrib.django``: ``SegmentContextMiddleware`` (sync and async).
- ``segment_logging.contrib.starlette``: ``SegmentContextMiddleware`` for Starlette and
  FastAPI, which also flushes every handler at the ASGI lifespan's shutdown.
- ``segment_logging.contrib.flask``: ``SegmentContext``, an extension.
- ``segment_logging.contrib.celery``: ``propagate_context()``, which carries the
  publisher's binding to the task in the message headers.

All of them build on :func:`segment_logging.bind`.
"""
