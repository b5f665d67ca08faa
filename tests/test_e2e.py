"""The e2e-cli of Segment's cross-SDK conformance suite, against the fake server."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from segment_logging.e2e import main
from segment_logging.testing import SegmentServer

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _spec(server: SegmentServer, **config: Any) -> dict[str, Any]:
    return {
        "writeKey": server.write_key,
        "apiHost": server.url,
        "sequences": [
            {
                "delayMs": 0,
                "events": [
                    {"type": "track", "event": "Test", "userId": "user-1", "messageId": "e1"},
                    {"type": "identify", "userId": "user-1", "traits": {"plan": "pro"}, "messageId": "e2"},
                ],
            },
            {
                "delayMs": 10,
                "events": [
                    {"type": "group", "groupId": "g1", "anonymousId": "a1", "messageId": "e3"},
                    {"type": "alias", "previousId": "a1", "userId": "user-1", "messageId": "e4"},
                    {"type": "page", "name": "Home", "userId": "user-1", "messageId": "e5"},
                    {"type": "screen", "name": "Main", "userId": "user-1", "messageId": "e6"},
                ],
            },
        ],
        "config": {"flushAt": 3, "flushInterval": 50, "maxRetries": 3, "timeout": 5, **config},
    }


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    status = main(argv)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return status, json.loads(out)


def test_basic_suite_delivers_every_event_once(
    server: SegmentServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every event of every sequence arrives once, with its messageId, in batches of flushAt."""
    status, result = _run(["--input", json.dumps(_spec(server))], capsys)
    assert (status, result) == (0, {"success": True, "sentBatches": 2})
    assert sorted(server.message_ids()) == ["e1", "e2", "e3", "e4", "e5", "e6"]
    assert [m["type"] for m in server.messages] == ["track", "identify", "group", "alias", "page", "screen"]


def test_retry_suite_rides_out_failures(server: SegmentServer, capsys: pytest.CaptureFixture[str]) -> None:
    """503 and 429 (with Retry-After) are retried; every event still arrives once."""
    server.fail_next(1, status=503)
    server.fail_next(1, status=429, retry_after="0")
    status, result = _run(["--input", json.dumps(_spec(server))], capsys)
    assert (status, result["success"]) == (0, True)
    assert sorted(server.message_ids()) == ["e1", "e2", "e3", "e4", "e5", "e6"]


def test_failure_is_reported(server: SegmentServer, capsys: pytest.CaptureFixture[str]) -> None:
    """A batch that cannot be delivered makes the output say so, with the error; exit status 1."""
    server.fail_next(1000, status=400)
    status, result = _run(["--input", json.dumps(_spec(server, maxRetries=0))], capsys)
    assert status == 1
    assert list(result) == ["success", "error", "sentBatches"]
    assert result["success"] is False
    assert "400" in result["error"]
    assert result["sentBatches"] == 0


def test_max_retries_limits_retries(server: SegmentServer, capsys: pytest.CaptureFixture[str]) -> None:
    """maxRetries caps the retries of a batch: 2 retries then given up."""
    server.fail_next(1000, status=500)
    spec = _spec(server, maxRetries=2, flushAt=100)
    spec["sequences"] = spec["sequences"][:1]
    status, result = _run(["--input", json.dumps(spec)], capsys)
    assert (status, result["success"]) == (1, False)
    assert len(server.requests) == 3


def test_bad_input_answers_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    """Input that is not valid is answered with success false, not a traceback."""
    status, result = _run(["--input", "{not json"], capsys)
    assert (status, result["success"], result["sentBatches"]) == (1, False, 0)


def test_runs_as_a_module(server: SegmentServer) -> None:
    """python -m segment_logging.e2e --input ... prints the result."""
    done = subprocess.run(
        [sys.executable, "-m", "segment_logging.e2e", "--input", json.dumps(_spec(server))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"success": True, "sentBatches": 2}


def test_e2e_config_names_the_suites_passed() -> None:
    """e2e-config.json names the suites this CLI passes."""
    config = json.loads((ROOT / "e2e-config.json").read_text())
    assert config["test_suites"] == "basic,retry"


def test_the_segment_logging_command_runs_it(
    server: SegmentServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`segment-logging e2e --input ...` is the same e2e-cli, as a subcommand of the project's command."""
    from segment_logging._cli import main as cli

    status = cli(["e2e", "--input", json.dumps(_spec(server))])
    result = json.loads(capsys.readouterr().out)
    assert status == 0
    assert result["success"] is True
    assert len(server.messages) == 6
