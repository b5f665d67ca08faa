"""The command line: help a newcomer understands, one table of commands, `serve` started and stopped."""

from __future__ import annotations

import logging
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from segment_logging import SegmentHandler, _cli
from segment_logging._clock import monotonic


def _cli_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line in this process: (status, stdout, stderr)."""
    try:
        status = _cli.main(args)
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def test_help_names_every_command_and_how_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` lists serve with what it does, and shows the three steps to see events."""
    status, out, _ = _cli_main(capsys, "--help")
    assert status == 0
    assert re.search(r"serve\s+run a fake Segment on this machine", out)
    assert "export SEGMENT_HOST=http://127.0.0.1:8765" in out


def test_serve_help_explains_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --help` says what is accepted, what is rejected, that nothing is forwarded, and every option."""
    status, out, _ = _cli_main(capsys, "serve", "--help")
    assert status == 0
    for text in ("Nothing is forwarded", "missing userId", "--port", "--host", "--write-key", "Ctrl-C"):
        assert text in out


def test_no_command_prints_the_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    """With no command, the help goes to stderr and the status is 2, as for any usage error."""
    status, out, err = _cli_main(capsys)
    assert (status, out) == (2, "")
    assert "COMMAND" in err


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped command fails with status 2 and names the valid ones."""
    status, _, err = _cli_main(capsys, "serv")
    assert status == 2
    assert "invalid choice: 'serv'" in err
    assert "'serve'" in err


def test_the_console_script_is_the_same_command(capsys: pytest.CaptureFixture[str]) -> None:
    """The installed `segment-logging` script is the same command line (the serve tests use python -m)."""
    script = Path(sys.executable).parent / "segment-logging"
    assert script.exists()
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert done.stdout.startswith("segment-logging ")
    assert done.stdout == _cli_main(capsys, "--version")[1]


def test_every_command_in_the_table_has_the_interface() -> None:
    """Each module in COMMANDS has SUMMARY, DESCRIPTION, add_arguments and run: one line adds a command."""
    parser = _cli.build_parser()
    for name in _cli.COMMANDS:
        module = _cli._command(name)
        assert callable(module.add_arguments)
        assert callable(module.run)
        assert module.SUMMARY
        assert module.DESCRIPTION
        required = {"e2e": ["--input", "{}"], "drain": ["segment.db"]}.get(name, [])
        assert parser.parse_args([name, *required]).command == name


class _Serving:
    """A `serve` subprocess and its output so far."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "segment_logging", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.output = ""

    def read_until(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Read stdout until ``pattern`` appears (no sleeping: waits on the pipe)."""
        assert self.process.stdout is not None
        deadline = monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while (match := re.search(pattern, self.output)) is None:
                remaining = deadline - monotonic()
                assert remaining > 0, f"{pattern!r} not seen in {self.output!r}"
                if selector.select(remaining):
                    # os.read, not readline: a buffered reader would hide lines from select().
                    chunk = os.read(self.process.stdout.fileno(), 65536)
                    assert chunk, f"serve exited: {self.output!r}"
                    self.output += chunk.decode()
        return match

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=10)
        return self.process.returncode, self.output + out.decode(), err.decode()


@pytest.fixture
def serving() -> Iterator[list[_Serving]]:
    """Serve subprocesses started by a test; killed if the test left one running."""
    started: list[_Serving] = []
    yield started
    for serve in started:
        if serve.process.poll() is None:
            serve.process.kill()
            serve.process.communicate(timeout=10)


def _serve(serving: list[_Serving], *args: str) -> tuple[_Serving, str]:
    serve = _Serving(*args)
    serving.append(serve)
    url = serve.read_until(r"listening on (http://\S+?),")[1]
    serve.read_until("Ctrl-C to stop")
    return serve, url


def test_serve_shows_events_and_stops_cleanly_on_ctrl_c(
    serving: list[_Serving], logger: logging.Logger
) -> None:
    """`serve` prints where to point the app, a line per event, and exits 0 on SIGINT with no traceback."""
    serve, url = _serve(serving, "--port", "0")
    assert url.startswith("http://127.0.0.1:")
    assert f"export SEGMENT_HOST={url}" in serve.output
    handler = SegmentHandler("any", host=url, shutdown_timeout=2)
    logger.addHandler(handler)
    logger.info("Signup", extra={"segment": {"user_id": "u1", "properties": {"plan": "pro"}}})
    assert handler.flush(5)
    handler.close()
    serve.read_until(r"track\s+Signup\s+user u1  plan=pro")
    status, out, err = serve.stop(signal.SIGINT)
    assert status == 0
    assert out.rstrip().endswith("Stopped.")
    assert err == ""  # no traceback, and no warning: 127.0.0.1 is the default


def test_serve_stops_on_sigterm(serving: list[_Serving]) -> None:
    """SIGTERM (a container or service manager stopping it) stops it as cleanly as Ctrl-C."""
    serve, _ = _serve(serving, "--port", "0")
    status, out, err = serve.stop(signal.SIGTERM)
    assert (status, err) == (0, "")
    assert out.rstrip().endswith("Stopped.")


def test_serve_warns_when_listening_beyond_this_machine(serving: list[_Serving]) -> None:
    """Another address than loopback works, with a warning on stderr (the default is 127.0.0.1)."""
    serve, url = _serve(serving, "--port", "0", "--host", "0.0.0.0")
    assert url.startswith("http://0.0.0.0:")
    status, _, err = serve.stop()
    assert status == 0
    assert "warning: listening on 0.0.0.0, not only this machine" in err


def test_a_port_in_use_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    """When the port is taken, serve says so and suggests --port, with status 1 and no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = _cli_main(capsys, "serve", "--port", str(port))
    assert status == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in err
    assert "--port" in err


def test_serve_with_a_write_key_rejects_others(serving: list[_Serving]) -> None:
    """`--write-key` makes it answer 401 to other keys, shown as a REJECTED line; the key is never printed."""
    serve, url = _serve(serving, "--port", "0", "--write-key", "k-123")
    batch = {"batch": [{"type": "track", "event": "E", "userId": "u"}], "sentAt": "2026-01-01T00:00:00Z"}
    assert httpx.post(f"{url}/v1/batch", json=batch, auth=("other", "")).status_code == 401
    serve.read_until("REJECTED  401 invalid write key")
    status, out, _ = serve.stop()
    assert status == 0
    assert "k-123" not in out
