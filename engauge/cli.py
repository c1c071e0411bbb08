"""The ``engauge`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import trio

from engauge import __version__, logs
from engauge.cluster.node import ROLES, serve_node
from engauge.cluster.shared import ClusterMismatch
from engauge.config import SETTINGS, Config, ConfigError, load_config
from engauge.importer import ImportProblem, files_of, import_offline, import_online
from engauge.service import serve
from engauge.store.backup import BackupError, backup, restore
from engauge.store.lock import BasePathInUse
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
    serving = commands.add_parser(
        "serve",
        help="run the server (the default command)",
        description="Run Engauge. With ENGAUGE_REDIS set, this process is one node of a "
        "cluster and --role says which part it plays.",
    )
    serving.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="ingest: take interactions; aggregate: count partitions; dashboard: serve the "
        "dashboard; all: the three (default). Roles other than all need ENGAUGE_REDIS.",
    )
    importing = commands.add_parser(
        "import",
        help="import interactions from NDJSON or the Go Engauge's CSV files",
        description="Import into the stopped instance at ENGAUGE_BASEPATH, or with --url "
        "into a running one. PATH is a file or the Go Engauge's interactions/ directory.",
    )
    importing.add_argument("path", type=Path, metavar="PATH")
    importing.add_argument("--format", choices=("ndjson", "engauge-csv"), default=None)
    importing.add_argument("--url", help="a running Engauge, such as http://127.0.0.1:8080")
    importing.add_argument("--api-key", help="its API key (default: ENGAUGE_APIKEY)")
    backing_up = commands.add_parser(
        "backup",
        help="copy ENGAUGE_BASEPATH (a server may be running on it) into DEST",
        description="Copy the newest snapshot and the journal after it, with the settings "
        "and secrets, from ENGAUGE_BASEPATH into DEST (new or empty). The server may keep "
        "running and ingesting.",
    )
    backing_up.add_argument("destination", type=Path, metavar="DEST")
    restoring = commands.add_parser(
        "restore",
        help="copy a backup SRC into ENGAUGE_BASEPATH (new or empty), to start from",
    )
    restoring.add_argument("source", type=Path, metavar="SRC")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, check the configuration, run; 2 on a configuration error."""
    arguments = _parser().parse_args(argv)
    try:
        config = load_config()
    except ConfigError as error:
        print(f"engauge: configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(config.logformat)
    if arguments.command == "import":
        return _import(arguments, config)
    if arguments.command in ("backup", "restore"):
        return _copy(arguments, config)
    role = getattr(arguments, "role", "all")
    if role != "all" and config.redis is None:
        print(
            f"engauge: --role {role} needs ENGAUGE_REDIS: the roles are the parts of a cluster",
            file=sys.stderr,
        )
        return 2
    try:
        if config.redis is None:
            trio.run(serve, config)
        else:
            trio.run(serve_node, config, config.redis, role)
    except Exception as error:
        reason = _fixable(error)
        if reason is None:
            raise
        print(f"engauge: cannot start: {reason}", file=sys.stderr)
        return 2
    return 0


def _import(arguments: argparse.Namespace, config: Config) -> int:
    try:
        paths = files_of(arguments.path)
        if arguments.url:
            key = arguments.api_key or config.apikey
            if not key:
                print("engauge: import: --api-key (or ENGAUGE_APIKEY) is needed", file=sys.stderr)
                return 2
            report = import_online(paths, arguments.format, arguments.url, key)
        else:
            report = import_offline(paths, arguments.format, config.basepath, config.timezone)
    except BasePathInUse as error:
        print(
            f"engauge: import: {error}; stop it, or import through its API with --url",
            file=sys.stderr,
        )
        return 2
    except (ImportProblem, OSError) as error:
        print(f"engauge: import: {error}", file=sys.stderr)
        return 2
    print(f"imported {report.imported:,} interactions; skipped {report.rejected:,} bad rows")
    return 0


def _copy(arguments: argparse.Namespace, config: Config) -> int:
    try:
        if arguments.command == "backup":
            copied = backup(config.basepath, arguments.destination)
            where = arguments.destination
        else:
            copied = restore(arguments.source, config.basepath)
            where = config.basepath
    except (BackupError, OSError) as error:
        print(f"engauge: {arguments.command}: {error}", file=sys.stderr)
        return 1
    print(
        f"{arguments.command}: {where}: snapshot {copied.snapshot or '(none yet)'}, "
        f"{copied.segments} journal segments, {copied.size:,} bytes"
    )
    return 0


def _fixable(error: BaseException) -> str | None:
    """The one-line reason when the server stopped for a cause its user can fix (a port in
    use, an unwritable base path, a snapshot from a newer release); else ``None``."""
    if isinstance(error, BaseExceptionGroup):
        reasons = [_fixable(inner) for inner in error.exceptions]
        return next((reason for reason in reasons if reason), None)
    if isinstance(error, NewerFormatError | OSError | ClusterMismatch):
        return str(error)
    return None


if __name__ == "__main__":
    sys.exit(main())
