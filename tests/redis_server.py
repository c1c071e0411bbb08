"""A real ``redis-server`` on 127.0.0.1 for the cluster tests and benchmark.

Each one has a free port and a directory of its own, appends every write to its AOF and
syncs it before answering (``appendfsync always``: the cluster's "2xx means durable"), and
is killed by its owner; :meth:`RedisServer.kill` and :meth:`RedisServer.start` again on the
same directory and port is a crash and a restart.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.debian import REDIS

START_TIMEOUT = 20.0


def free_port() -> int:
    """A port free on 127.0.0.1 now: for a server that must come back on the same one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """``redis-server`` with its data in ``directory``."""

    def __init__(self, directory: Path, appendfsync: str = "always") -> None:
        self.directory = directory
        self.appendfsync = appendfsync
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(REDIS),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
                "--save",
                "",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.directory}/redis.log")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        """Whether it answers ``PING`` (and has loaded its AOF: until then it says LOADING)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: only what the AOF holds survives."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(START_TIMEOUT)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(START_TIMEOUT)
            self.process = None
