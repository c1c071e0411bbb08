"""Fixtures that run the real Engauge server as a subprocess on 127.0.0.1.

End-to-end tests talk to the server over real HTTP, so they see exactly what a user sees:
the start-up line, status codes, headers, persistence across restarts and crashes. Every
process started here is killed in a ``finally`` so none outlives the test run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import pytest
from debian import CHROMIUM, CHROMIUM_ARGS, install_chromium
from playwright.sync_api import Browser, sync_playwright

APIKEY = "test-api-key-0123456789"
PASSWORD = "test-password-0123456789"
USER = "admin"
JWT_KEY = "test-jwt-signing-key-" + "0123456789abcdef" * 3
"""Long enough for HS512 too, so pyjwt never warns (warnings are errors here)."""

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
REQUEST_TIMEOUT = 15.0
LISTENING = "Engauge listening on "


def base_env(basepath: Path, extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """The process environment: ours, minus any ENGAUGE_* the caller's shell had set.

    A ``None`` in ``extra`` removes that variable (to let the server generate a secret).
    """
    env: dict[str, str | None] = {
        key: value for key, value in os.environ.items() if not key.startswith("ENGAUGE_")
    }
    env.update(
        ENGAUGE_HOST="127.0.0.1",
        ENGAUGE_PORT="0",
        ENGAUGE_BASEPATH=str(basepath),
        ENGAUGE_TIMEZONE="UTC",
        ENGAUGE_APIKEY=APIKEY,
        ENGAUGE_PASSWORD=PASSWORD,
        ENGAUGE_JWT=JWT_KEY,
    )
    env.update(extra or {})
    return {key: value for key, value in env.items() if value is not None}


def no_cookie_client(base_url: str = "", keep_alive: bool = False) -> httpx.Client:
    """A client that never stores cookies, so one login cannot leak into other requests.

    Without ``keep_alive`` every request closes its connection: a refused request whose
    body the server never read can stall a kept-alive connection (tested on its own in
    test_http_dashboard), and one such stall must not slow every later test down.
    """
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    headers = {} if keep_alive else {"Connection": "close"}
    return httpx.Client(base_url=base_url, cookies=jar, headers=headers, timeout=REQUEST_TIMEOUT)


def days_ago(days: float, hour: int = 12) -> datetime:
    """``hour`` (UTC, noon by default) of the day ``days`` before today: a past bucket of
    its own. Today's never lies in the future, whatever the hour the tests run at: an hour
    not reached yet becomes two minutes ago (or midnight, just after it), so data placed a
    few minutes after it is still accepted (up to five minutes ahead is)."""
    now = datetime.now(UTC)
    day = (now - timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    if day > now:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        day = max(midnight, now - timedelta(minutes=2))
    return day


def run_engauge(basepath: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run an ``engauge`` command (import, backup, restore) on ``basepath`` and wait."""
    return subprocess.run(
        [sys.executable, "-m", "engauge", *arguments],
        env=base_env(basepath),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    step: float = 0.02,
    pause: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds pass; the last result.

    ``pause`` waits ``step`` seconds between checks (a browser page passes its own, so its
    events keep arriving meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        pause(step)


class EngaugeServer:
    """One ``engauge serve`` process on a base path, with helpers to talk to it.

    ``start``/``stop``/``kill``/``restart`` manage the process; stdout and stderr go to
    files in the base path's parent so nothing can block on a full pipe.
    """

    def __init__(
        self,
        basepath: Path,
        env: dict[str, str | None] | None = None,
        arguments: tuple[str, ...] = (),
    ) -> None:
        self.basepath = basepath
        self.extra_env = dict(env or {})
        self.arguments = arguments
        """Given to ``engauge serve`` (a cluster node's ``--role``)."""
        self.apikey = APIKEY
        self.password = PASSWORD
        self.user = USER
        self.jwt_key = JWT_KEY
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.http: httpx.Client | None = None
        self.starts = 0
        self._token: str | None = None
        self._logs: list[Any] = []

    # -- process -----------------------------------------------------------------------

    @property
    def stdout_path(self) -> Path:
        return self.basepath.parent / f"{self.basepath.name}-stdout-{self.starts}.log"

    @property
    def stderr_path(self) -> Path:
        return self.basepath.parent / f"{self.basepath.name}-stderr-{self.starts}.log"

    def start(self) -> EngaugeServer:
        """Start the process and wait for its "listening on" line."""
        assert self.process is None, "already running"
        self.starts += 1
        out = self.stdout_path.open("wb")
        err = self.stderr_path.open("wb")
        self._logs = [out, err]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engauge", "serve", *self.arguments],
            env=base_env(self.basepath, self.extra_env),
            cwd=self.basepath.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        self.url = self._wait_for_url()
        self.http = no_cookie_client(self.url)
        self._token = None
        return self

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process is not None
        while time.monotonic() < deadline:
            for line in self.stdout().splitlines():
                if line.startswith(LISTENING):
                    url = line[len(LISTENING) :].strip()
                    assert url.startswith("http://127.0.0.1:"), url
                    return url
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        pytest.fail(f"engauge did not start:\n{self.stderr()[-3000:]}")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal (SIGTERM), wait, return the exit code; kill it if it does not stop in time."""
        process = self._release()
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signum)
        try:
            return process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
            pytest.fail("engauge did not stop within the timeout after SIGTERM")
        finally:
            self._close_logs()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or snapshot anything."""
        process = self._release()
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait(STOP_TIMEOUT)
        self._close_logs()

    def restart(self) -> EngaugeServer:
        """Stop gracefully (which must exit 0) and start again on the same base path."""
        assert self.stop() == 0, self.stderr()[-3000:]
        return self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _release(self) -> subprocess.Popen[bytes] | None:
        if self.http is not None:
            self.http.close()
            self.http = None
        process, self.process = self.process, None
        return process

    def _close_logs(self) -> None:
        for log in self._logs:
            log.close()
        self._logs = []

    # -- HTTP helpers ------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A plain request: no key, no token, no cookies."""
        assert self.http is not None, "server not running"
        return self.http.request(method, path, **kwargs)

    def post_api(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        """POST to the ingest API with the api-key header; ``body`` is sent as JSON."""
        headers = {"api-key": self.apikey, **kwargs.pop("headers", {})}
        if body is not None:
            kwargs["json"] = body
        return self.request("POST", path, headers=headers, **kwargs)

    def send(self, *interactions: dict[str, Any]) -> httpx.Response:
        """Send interactions as one batch and insist they were all accepted."""
        response = self.post_api("/api/interactions", list(interactions))
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": len(interactions)}
        return response

    def login(self) -> str:
        """A fresh dashboard token from ``POST /login``."""
        response = self.request("POST", "/login", json={"username": USER, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.login()
        return self._token

    def dash(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A dashboard request with ``Authorization: Bearer``."""
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **params: Any) -> Any:
        """GET a dashboard resource that must answer 200; its JSON."""
        response = self.dash("GET", path, params=params)
        assert response.status_code == 200, f"{path} {params}: {response.text}"
        return response.json()

    def summary(self, interval: str = "allTime", at: Any = None) -> dict[str, Any]:
        params = {} if at is None else {"at": str(at)}
        return dict(self.get(f"/dashboard/summaries/{interval}", **params))

    def total(self) -> int:
        return int(self.summary()["total"])

    def settled_total(self) -> int:
        """The all-time total once earlier acknowledged interactions are all counted."""
        previous = self.total()
        for _ in range(50):
            time.sleep(0.05)
            current = self.total()
            if current == previous:
                return current
            previous = current
        pytest.fail("the all-time total kept changing")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., EngaugeServer]]:
    """Start fresh servers (``start_server(env={...}, basepath=...)``); all stopped after."""
    servers: list[EngaugeServer] = []

    def start(
        env: dict[str, str | None] | None = None, basepath: Path | None = None
    ) -> EngaugeServer:
        server = EngaugeServer(basepath or tmp_path / f"data{len(servers)}", env)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        stop_all(servers)


def stop_all(servers: list[EngaugeServer]) -> None:
    """Stop each running server; it must exit 0. Kill whatever is left, whatever happens."""
    codes: list[tuple[int, str]] = []
    try:
        for server in servers:
            if server.process is None:
                continue
            running = server.alive()
            code = server.stop()
            if code != 0 or not running:
                codes.append((code, server.stderr()[-2000:]))
    finally:
        for server in servers:
            server.kill()
    assert not codes, f"a server did not exit cleanly (0 after SIGTERM): {codes}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngaugeServer]:
    """One server shared by a module's tests that do not disturb each other."""
    instance = EngaugeServer(tmp_path_factory.mktemp("engauge") / "data")
    try:
        instance.start()
        yield instance
    finally:
        stop_all([instance])


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Chromium for a module's browser tests; skipped, saying why, without one."""
    reason = install_chromium()
    if reason is not None:
        pytest.skip(f"browser tests need Chromium: {reason}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
