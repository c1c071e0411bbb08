"""What every node of a cluster shares through Redis: the connection, the partition count,
the generated secrets and the dashboard settings."""

from __future__ import annotations

import logging

import coredis
import msgspec
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from engauge.cluster import layout
from engauge.store.secrets import GENERATED, Secrets, new_secret
from engauge.stream.settings import InvalidSettings, Settings, apply_patch

log = logging.getLogger("engauge.cluster")

Redis = coredis.Redis[bytes]

FAILURES = (RedisError, OSError, TimeoutError)
"""What a Redis call raises when Redis is unreachable or refuses: retried, never fatal."""


def as_bytes(value: str | bytes) -> bytes:
    """A value from Redis (bytes: the clients do not decode) as bytes for the type checker."""
    return value if isinstance(value, bytes) else value.encode()


def as_text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ClusterMismatch(RuntimeError):
    """This node's configuration disagrees with the cluster it joins; the message says how."""


CONNECT_SECONDS = 5.0
ANSWER_SECONDS = 30.0
"""Longest wait for an answer (blocking reads block for at most a second): a connection to
a Redis host that vanished without a reset fails then, instead of hanging for minutes."""


def connect(url: str) -> Redis:
    """A client for ``ENGAUGE_REDIS``; it connects lazily, so a node can start before Redis.

    Commands are never retried by the client: a command whose answer was lost may have run,
    and publishing a change or storing a snapshot twice is not harmless. The caller's
    retry (the next round) decides what to send again."""
    return coredis.Redis.from_url(
        url,
        decode_responses=False,
        retry_policy=NoRetryPolicy(),
        connect_timeout=CONNECT_SECONDS,
        stream_timeout=ANSWER_SECONDS,
    )


async def agree_on_partitions(redis: Redis, partitions: int) -> None:
    """Record the partition count if the cluster is new; refuse another count, since users
    would then be looked for in the wrong partitions."""
    await redis.set(layout.PARTITIONS, str(partitions), condition=coredis.PureToken.NX)
    stored = int(await redis.get(layout.PARTITIONS) or partitions)
    if stored != partitions:
        raise ClusterMismatch(
            f"ENGAUGE_PARTITIONS={partitions}, but the cluster at ENGAUGE_REDIS was created "
            f"with {stored} partitions; set ENGAUGE_PARTITIONS={stored}"
        )


async def shared_secrets(redis: Redis, given: dict[str, str | None]) -> Secrets:
    """Given secrets win; the others are generated once, by whichever node starts first,
    and kept in Redis so that every node accepts the same keys and tokens."""
    generated = []
    values = {}
    for name in GENERATED:
        value = given.get(name)
        if value is None:
            if await redis.hsetnx(layout.SECRETS, name, new_secret(name)):
                generated.append(name)
            value = (await redis.hget(layout.SECRETS, name) or b"").decode()
        values[name] = value
    return Secrets(generated=tuple(generated), **values)


async def load_settings(redis: Redis) -> Settings:
    """The cluster's dashboard settings (defaults until someone changes them)."""
    return settings_of(await redis.get(layout.SETTINGS))


def settings_of(stored: bytes | None) -> Settings:
    if stored is None:
        return Settings()
    try:
        return apply_patch(Settings(), msgspec.json.decode(stored))
    except (InvalidSettings, msgspec.DecodeError) as error:
        log.warning("the cluster's settings are ignored: %s", error)
        return Settings()


async def save_settings(redis: Redis, settings: Settings) -> None:
    """Store the settings and tell every dashboard node (aggregators read them each lease
    round)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(layout.SETTINGS, msgspec.json.encode(settings.to_json()))
        pipe.xadd(
            layout.SETTINGS_CHANGES,
            {"changed": "1"},
            trim_strategy=coredis.PureToken.MAXLEN,
            threshold=SETTINGS_CHANGES_KEPT,
            trim_operator=coredis.PureToken.APPROXIMATELY,
        )


SETTINGS_CHANGES_KEPT = 100
