"""Every setting, declared once: name, default, meaning and how its value is read.

The README's configuration table is checked against :data:`SETTINGS` by a test, and an
invalid value stops start-up with one line naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import define


class ConfigError(ValueError):
    """A variable has a value Engauge cannot use; the message names it and the fix."""


@define(frozen=True)
class Setting:
    """One ``ENGAUGE_*`` variable. ``default`` is a fixed text, or ``None`` with
    ``default_from`` computing one at start-up (or nothing: the value stays ``None``)."""

    name: str
    default: str | None
    help: str
    parse: Callable[[str], Any]
    default_from: Callable[[], str] | None = None

    @property
    def variable(self) -> str:
        return f"ENGAUGE_{self.name.upper()}"


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError("must be a port number from 0 to 65535 (0 picks a free port)")
    return port


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not an IANA time zone name such as Europe/Berlin or UTC") from None


def _minutes(value: str) -> float:
    minutes = float(value)
    if not 0 < minutes <= 7 * 24 * 60:
        raise ValueError("must be a number of minutes above 0 and at most a week (10080)")
    return minutes


def _seconds(value: str) -> float:
    seconds = float(value)
    if not 1 <= seconds <= 24 * 3600:
        raise ValueError("must be a number of seconds from 1 to 86400")
    return seconds


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return lowered

    return parse


def _secret(value: str) -> str:
    if len(value) < 8:
        raise ValueError("must be at least 8 characters (leave it unset to generate one)")
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _origins(value: str) -> tuple[str, ...]:
    origins = tuple(_origin(part) for part in value.split(",") if part.strip())
    if not origins:
        raise ValueError("must be * or a comma-separated list of origins")
    if "*" in origins and len(origins) > 1:
        raise ValueError("is * (every origin) or a list of origins, not both")
    return origins


DEFAULT_PORTS = {"http": 80, "https": 443}
REDIS_SCHEMES = ("redis", "rediss", "unix")
MAX_PARTITIONS = 1024


def _redis(value: str) -> str:
    if urlsplit(value).scheme not in REDIS_SCHEMES:
        raise ValueError(
            "must be a Redis URL such as redis://127.0.0.1:6379/0 (or rediss://, unix://), "
            "or unset for the single process"
        )
    return value


def _partitions(value: str) -> int:
    partitions = int(value)
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"must be a whole number from 1 to {MAX_PARTITIONS}")
    return partitions


def _origin(text: str) -> str:
    """An origin as browsers send it in ``Origin``: lower-case, no default port, no path."""
    text = text.strip()
    if text == "*":
        return text
    parts = urlsplit(text.rstrip("/"))
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path or parts.query:
        raise ValueError(
            f"{text!r} is not an origin; write scheme://host[:port], "
            "such as https://www.example.com"
        )
    port = parts.port
    suffix = "" if port in (None, DEFAULT_PORTS[parts.scheme]) else f":{port}"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{suffix}"


def local_zone_name() -> str:
    """The server's IANA zone: ``TZ`` (a name, or a path such as ``:/etc/localtime``), else
    ``/etc/timezone``, else the zone ``/etc/localtime`` links to, else UTC."""
    variable = os.environ.get("TZ", "").strip().lstrip(":")
    if variable and not variable.startswith("/"):
        return variable
    timezone_file = Path("/etc/timezone")
    if timezone_file.is_file():
        name = timezone_file.read_text().strip()
        if name:
            return name
    localtime = Path(variable or "/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    return "UTC"


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address to listen on.", _text),
    Setting("port", "8080", "Port to listen on (0 picks a free one).", _port),
    Setting("https", "false", "Serve TLS with the certificate and key files below.", _bool),
    Setting("certfile", None, "PEM certificate file, required when HTTPS is on.", Path),
    Setting("keyfile", None, "PEM private key file, required when HTTPS is on.", Path),
    Setting("basepath", "engauge-data", "Data directory: journal, settings, secrets.", Path),
    Setting(
        "timezone",
        None,
        "IANA zone of the calendar buckets (default: the server's).",
        _zone,
        default_from=local_zone_name,
    ),
    Setting("sessiondelay", "30", "Session gap in minutes (fractions allowed).", _minutes),
    Setting(
        "weekstart", "monday", "First day of a week: monday or sunday.", _choice("monday", "sunday")
    ),
    Setting("user", "admin", "Dashboard user name.", _text),
    Setting("password", None, "Dashboard password (generated and stored when unset).", _secret),
    Setting("jwt", None, "Key that signs login tokens (generated when unset).", _secret),
    Setting("apikey", None, "Key for the ingestion API (generated when unset).", _secret),
    Setting(
        "publickey",
        None,
        "Write-only key for web pages (the tracker): accepted on ingest routes only, only from "
        "the origins in ENGAUGE_CORS, rate-limited per address (generated when unset).",
        _secret,
    ),
    Setting(
        "fsync",
        "everysec",
        "When the journal is flushed to disk: always, everysec or off.",
        _choice("always", "everysec", "off"),
    ),
    Setting(
        "snapshotevery",
        "60",
        "Seconds between snapshots of the in-memory state (one is also written at shutdown).",
        _seconds,
    ),
    Setting("logformat", "text", "Log lines as text or json lines.", _choice("text", "json")),
    Setting(
        "metricstoken",
        None,
        "Bearer token GET /metrics requires (unset: /metrics is open to whoever reaches it).",
        _secret,
    ),
    Setting("cors", "*", "Origins allowed to call /api/* from browsers: * or a list.", _origins),
    Setting(
        "redis",
        None,
        "Redis URL that makes this process one node of a cluster (see Scaling out); empty: "
        "unset: the single process.",
        _redis,
    ),
    Setting(
        "partitions",
        "8",
        "Partition streams of a cluster, fixed when it is first started (1 to 1024).",
        _partitions,
    ),
)


@define(frozen=True)
class Config:
    """The parsed settings; build it with :func:`load_config`."""

    host: str
    port: int
    https: bool
    certfile: Path | None
    keyfile: Path | None
    basepath: Path
    timezone: ZoneInfo
    sessiondelay: float
    weekstart: str
    user: str
    password: str | None
    jwt: str | None
    apikey: str | None
    publickey: str | None
    fsync: str
    snapshotevery: float
    logformat: str
    metricstoken: str | None
    cors: tuple[str, ...]
    redis: str | None
    partitions: int


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read every ``ENGAUGE_*`` variable; raise :class:`ConfigError` naming the first bad one."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.variable)
        if raw is None or (raw == "" and setting.default is None):
            raw = setting.default_from() if setting.default_from else setting.default
        if raw is None:
            values[setting.name] = None
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as error:
            reason = (
                str(error) if not str(error).startswith("invalid literal") else "is not a number"
            )
            raise ConfigError(f"{setting.variable}={raw!r}: {reason}") from None
    config = Config(**values)
    _check_https(config)
    if config.publickey is not None and config.publickey == config.apikey:
        raise ConfigError(
            "ENGAUGE_PUBLICKEY is the same as ENGAUGE_APIKEY; every visitor of a tracked page "
            "can read the public key, so give it a value of its own"
        )
    return config


def _check_https(config: Config) -> None:
    if not config.https:
        return
    for name, path in (("ENGAUGE_CERTFILE", config.certfile), ("ENGAUGE_KEYFILE", config.keyfile)):
        if path is None:
            raise ConfigError(f"{name}: required when ENGAUGE_HTTPS is true")
        if not path.is_file():
            raise ConfigError(f"{name}={str(path)!r}: no such file")
