"""``segment-logging serve``: a fake Segment on this machine that shows every event as it arrives.

It is :class:`~segment_logging.testing.SegmentServer` (so it accepts and
rejects what Segment would, for the reasons Segment would give) with two
windows on it: one line per event on the terminal, and a live page at ``/``.
It keeps the latest events in memory only and never forwards anything.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from importlib import resources
from typing import Any, TextIO

from .testing import Request, SegmentServer

DEFAULT_PORT = 8765
KEPT = 1000
"""How many events (and rejected batches) the live page can show; older ones are forgotten."""
_SHOWN_FIELDS = 4
"""How many properties (or traits) a terminal line shows."""
_SHOWN_VALUE_CHARS = 40

_COLORS = {
    "track": "32",  # green
    "identify": "34",  # blue
    "page": "36",  # cyan
    "screen": "36",
    "group": "35",  # magenta
    "alias": "33",  # yellow
    "rejected": "1;31",  # bold red
}


class _SinkServer(SegmentServer):
    """A SegmentServer that, without a write key of its own, accepts any (still in Basic auth)."""

    def __init__(self, write_key: str | None, **options: Any) -> None:
        super().__init__(write_key or "any", **options)
        self.any_key = write_key is None

    def _judge(self, headers: dict[str, str], raw: bytes) -> tuple[int, str, dict[str, Any] | None]:
        if self.any_key:
            if not headers.get("authorization", "").startswith("Basic "):
                return 401, "no write key: send it as the HTTP Basic user name", None
            headers = {**headers, "authorization": self._expected_auth}
        return super()._judge(headers, raw)


class Sink:
    """The dev sink: a fake Segment that prints each event and serves a live page.

    Args:
        host: the address to bind (loopback unless you mean otherwise).
        port: the port to bind; 0 picks a free one.
        write_key: accept only this key (others get 401, as from Segment); None accepts any.
        out: where the lines go.
        color: colour the lines; None colours when ``out`` is a terminal and ``$NO_COLOR`` is unset.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        write_key: str | None = None,
        out: TextIO | None = None,
        color: bool | None = None,
    ) -> None:
        self._out = out if out is not None else sys.stdout
        if color is None:
            color = _is_terminal(self._out) and not _no_color()
        self._color = color
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self._seq = 0
        self._loopback_only = _is_loopback(host)
        self.server = _SinkServer(write_key, host=host, port=port, pages=self._page)
        self.server.add_listener(self._on_request)

    def start(self) -> Sink:
        """Start serving in the background; returns self.

        Raises:
            OSError: the port is taken, or the address cannot be bound.
        """
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving. Idempotent."""
        self.server.stop()

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The URL to give the app as ``SEGMENT_HOST`` (and to open for the live page)."""
        return self.server.url

    # -- what arrives -----------------------------------------------------------------

    def _on_request(self, request: Request) -> None:
        received = time.time()
        self.server.clear()  # it keeps everything, for tests; a sink runs for days and keeps its own
        if request.status == 200:
            entries: list[dict[str, Any]] = [{"message": message} for message in request.messages]
        else:
            batch = (request.body or {}).get("batch")
            entries = [
                {
                    "rejected": request.reason + _culprit(request.reason, batch),
                    "status": request.status,
                    "count": len(batch) if isinstance(batch, list) else None,
                }
            ]
        with self._lock:
            for entry in entries:
                self._seq += 1
                entry["seq"] = self._seq
                entry["received"] = received
                self._entries.append(entry)
            # A closed pipe (the sink piped into `head`) must not stop the live page.
            with contextlib.suppress(OSError, ValueError):
                self._out.write("".join(self._line(entry) + "\n" for entry in entries))
                self._out.flush()

    def _line(self, entry: dict[str, Any]) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(entry["received"]))
        if "rejected" in entry:
            count = entry["count"]
            what = f" ({count} message{'s' if count != 1 else ''})" if count is not None else ""
            label = self._paint("REJECTED", "rejected")
            return f"{clock}  {label}  {entry['status']} {entry['rejected']}{what}"
        return f"{clock}  {describe(entry['message'], paint=self._paint)}"

    def _paint(self, text: str, kind: str) -> str:
        code = _COLORS.get(kind)
        return f"\x1b[{code}m{text}\x1b[0m" if self._color and code else text

    # -- the live page ----------------------------------------------------------------

    def _page(self, target: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        if self._loopback_only and not _is_loopback(_host_name(headers.get("host", ""))):
            # A web page the developer has open elsewhere could otherwise read the events
            # through DNS rebinding: only the names of this machine are served.
            return 403, "application/json", b'{"error": "this sink answers to 127.0.0.1 or localhost only"}'
        parts = urllib.parse.urlsplit(target)
        if parts.path == "/":
            page = resources.files("segment_logging").joinpath("_sink_page.html").read_bytes()
            return 200, "text/html; charset=utf-8", page
        if parts.path == "/events":
            query = urllib.parse.parse_qs(parts.query)
            try:
                after = int(query.get("after", ["0"])[0])
            except ValueError:
                after = 0
            with self._lock:
                entries = [entry for entry in self._entries if entry["seq"] > after]
                last = self._seq
            body = json.dumps({"events": entries, "last": last}, default=str).encode()
            return 200, "application/json", body
        return 404, "application/json", b'{"error": "not found"}'


def describe(message: dict[str, Any], *, paint: Callable[[str, str], str] | None = None) -> str:
    """One readable line for a message: type, name, user, and its first few properties or traits."""
    kind = str(message.get("type", "?"))
    label = f"{kind:<8}"
    if paint is not None:
        label = paint(label, kind)
    if kind in ("track",):
        name = message.get("event", "")
    elif kind in ("page", "screen"):
        name = message.get("name") or ""
    elif kind == "group":
        name = f"group {message.get('groupId', '')}"
    elif kind == "alias":
        name = f"from {message.get('previousId', '')}"
    else:
        name = ""
    user = message.get("userId")
    who = f"user {user}" if user not in (None, "") else f"anon {message.get('anonymousId', '')}"
    fields = message.get("traits") if kind in ("identify", "group") else message.get("properties")
    shown = ""
    if isinstance(fields, dict) and fields:
        pairs = [f"{key}={_short(value)}" for key, value in list(fields.items())[:_SHOWN_FIELDS]]
        more = len(fields) - _SHOWN_FIELDS
        shown = "  " + " ".join(pairs) + (f" (+{more} more)" if more > 0 else "")
    return f"{label}  {name!s:<24} {who}{shown}".rstrip()


def _culprit(reason: str, batch: object) -> str:
    """Which message a ``batch[N]: ...`` reason is about, as `` (track 'Signup', user u1)``."""
    match = re.match(r"batch\[(\d+)\]", reason)
    if match is None or not isinstance(batch, list) or int(match.group(1)) >= len(batch):
        return ""
    message = batch[int(match.group(1))]
    if not isinstance(message, dict):
        return ""
    name = message.get("event") or message.get("name")
    user = message.get("userId") or message.get("anonymousId")
    what = [f"{message.get('type', '?')}" + (f" {name!r}" if name else "")]
    if user:
        what.append(f"user {user}")
    return f" [{', '.join(what)}]"


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[: _SHOWN_VALUE_CHARS - 1] + "…"


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # not a file, or a closed one
        return False


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def _host_name(host_header: str) -> str:
    """The host name of a ``Host`` header: ``127.0.0.1:8765`` and ``[::1]:8765`` alike."""
    return urllib.parse.urlsplit(f"//{host_header}").hostname or ""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the command ---------------------------------------------------------------------

SUMMARY = "run a fake Segment on this machine and show each event your app sends"
DESCRIPTION = """\
Run a fake Segment on this machine and show each event your app sends, as it arrives.

It accepts and rejects what Segment would (missing userId, over 32 KB, a bad
write key, ...), prints one line per event and every rejected batch with the
reason, and serves a live page listing the events. Nothing is forwarded to
Segment or anywhere else; events are kept in memory only.

  1. segment-logging serve
  2. export SEGMENT_HOST=http://127.0.0.1:8765
  3. run your app as usual

Ctrl-C stops it.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` command's options."""
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; "
        "anything else lets other machines send and read events, with a warning)",
    )
    parser.add_argument(
        "--write-key",
        metavar="KEY",
        help="accept only this write key and reject others as Segment would (default: accept any)",
    )
    parser.add_argument(
        "--color",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="colour the lines (default: on a terminal, unless NO_COLOR is set)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (SIGINT) or SIGTERM; returns the exit status."""
    err = sys.stderr
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")  # an event name the terminal cannot encode still gets its line
    if not _is_loopback(args.host):
        err.write(
            f"warning: listening on {args.host}, not only this machine: anyone who can reach it can "
            "send events here and read them on the live page\n"
        )
    sink = Sink(host=args.host, port=args.port, write_key=args.write_key, color=args.color)
    try:
        sink.start()
    except OSError as exc:
        err.write(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        err.write(" (is another sink running? pick another port with --port)\n" if args.port else "\n")
        return 1
    stop = threading.Event()
    # Handled, not left to KeyboardInterrupt: a shell starts background jobs with SIGINT
    # ignored, and `kill -INT` should stop the sink there too.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    if args.write_key:
        keys, key_hint = "only the write key given with --write-key", "with SEGMENT_WRITE_KEY set to that key"
    else:
        keys, key_hint = "any write key", "with any SEGMENT_WRITE_KEY"
    print(
        f"Fake Segment listening on {sink.url}, accepting {keys}; nothing is forwarded anywhere.\n"
        f"  Point your app at it:  export SEGMENT_HOST={sink.url}  ({key_hint}, and no SEGMENT_SEND=0)\n"
        f"  Live page:             {sink.url}/\n"
        "  Ctrl-C to stop.",
        flush=True,
    )
    try:
        while not stop.wait(0.5):  # a timeout, so signals are seen on every platform
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sink.stop()
    print("Stopped.", flush=True)
    return 0
