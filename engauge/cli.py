"""The ``engauge`` command."""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from engauge import __version__
from engauge.config import SETTINGS, ConfigError, load_config
from engauge.service import serve
from engauge.store.snapshot import NewerFormatError


def _parser() -> argparse.ArgumentParser:
    variables = "\n".join(
        f"  {s.variable:<22} {s.help} (default: {s.default or 'see README'})" for s in SETTINGS
    )
    parser = argparse.ArgumentParser(
        prog="engauge",
        description="Self-hosted, real-time product analytics.",
        epilog=f"configuration (environment variables):\n{variables}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"engauge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the server (the default command)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, check the configuration, run; 2 on a configuration error."""
    _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config()
    except ConfigError as error:
        print(f"engauge: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        trio.run(serve, config)
    except Exception as error:
        reason = _fixable(error)
        if reason is None:
            raise
        print(f"engauge: cannot start: {reason}", file=sys.stderr)
        return 2
    return 0


def _fixable(error: BaseException) -> str | None:
    """The one-line reason when the server stopped for a cause its user can fix (a port in
    use, an unwritable base path, a snapshot from a newer release); else ``None``."""
    if isinstance(error, BaseExceptionGroup):
        reasons = [_fixable(inner) for inner in error.exceptions]
        return next((reason for reason in reasons if reason), None)
    if isinstance(error, NewerFormatError | OSError):
        return str(error)
    return None


if __name__ == "__main__":
    sys.exit(main())
