"""The ``segment-logging`` command (also ``python -m segment_logging``): one table of subcommands.

A subcommand is a module with ``SUMMARY`` and ``DESCRIPTION`` strings, an
``add_arguments(parser)`` function and a ``run(args) -> int`` function; adding
one is one line in :data:`COMMANDS`. Modules are imported only when their
command runs (or ``--help`` shows it), so the command starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from ._version import __version__

COMMANDS: dict[str, str] = {
    "serve": "segment_logging._sink",
    "e2e": "segment_logging._e2e_command",
    "drain": "segment_logging._drain",
}
"""Each subcommand's name and the module that implements it."""

DESCRIPTION = """\
Tools for apps that send Segment events with segment-logging.

See your events while you develop, without a Segment workspace:

  segment-logging serve                        # a fake Segment on http://127.0.0.1:8765
  export SEGMENT_HOST=http://127.0.0.1:8765    # then run your app as usual

"segment-logging COMMAND --help" tells more about each command.
"""


def _command(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    """The parser with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="segment-logging",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _command(name)
        sub = commands.add_parser(
            name,
            help=module.SUMMARY,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = _command(args.command).run(args)
    return status
