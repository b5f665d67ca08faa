"""``segment-logging e2e``: the e2e-cli of Segment's conformance suite, as a subcommand (see ``e2e``)."""

from __future__ import annotations

import argparse

from . import e2e

SUMMARY = "send a conformance-suite input through SegmentHandler and print the result (the e2e-cli)"
DESCRIPTION = e2e.__doc__ or SUMMARY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The e2e-cli's one argument."""
    parser.add_argument("--input", required=True, help="the test's input, as JSON")


def run(args: argparse.Namespace) -> int:
    """Run the e2e-cli; 0 when every event was delivered."""
    return e2e.main(["--input", args.input])
