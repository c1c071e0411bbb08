"""Dashboard accounts (SPEC §7): constant-time login, pinned HS256 tokens, throttling, CSRF."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import jwt

TOKEN_SECONDS = 900
ALGORITHM = "HS256"
FREE_FAILURES = 5
"""Failed logins from one address before each further attempt must wait."""
MAX_WAIT = 900.0
MAX_ADDRESSES = 100_000


def digest(secret: str | bytes) -> bytes:
    """SHA-256 of a secret: compared in constant time, digests also hide the length, and
    any string (even one with lone surrogates) can be hashed."""
    data = secret if isinstance(secret, bytes) else secret.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).digest()


class Accounts:
    """Checks credentials and issues and verifies the login tokens."""

    def __init__(
        self, user: str, password: str, key: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.user = user
        self.user_digest = digest(user)
        self.password_digest = digest(password)
        self.key = key
        self.clock = clock

    def check(self, user: str, password: str) -> bool:
        """Both compared in constant time, and both always compared."""
        user_ok = hmac.compare_digest(digest(user), self.user_digest)
        password_ok = hmac.compare_digest(digest(password), self.password_digest)
        return user_ok and password_ok

    def issue(self) -> str:
        now = int(self.clock())
        claims = {"sub": self.user, "iat": now, "exp": now + TOKEN_SECONDS}
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def verify(self, token: str) -> bool:
        """True for an unexpired HS256 token of this server's key and user; never raises."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError:
            return False
        return hmac.compare_digest(digest(str(claims["sub"])), self.user_digest)


class LoginThrottle:
    """Slows repeated failed logins from one address: after five, waits double up to 15 min."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[str, tuple[int, float]] = {}

    def retry_after(self, address: str) -> float:
        """Seconds this address must wait before trying again (0 when it may try now)."""
        failures, last = self._failures.get(address, (0, 0.0))
        if failures < FREE_FAILURES:
            return 0.0
        wait = min(2.0 ** (failures - FREE_FAILURES), MAX_WAIT)
        return max(0.0, last + wait - self.clock())

    def failed(self, address: str) -> None:
        """Count a failure: O(1). Addresses are kept in order of their last failure, so
        the oldest are forgotten first when too many are remembered."""
        failures, _ = self._failures.pop(address, (0, 0.0))
        self._failures[address] = (failures + 1, self.clock())
        while len(self._failures) > MAX_ADDRESSES:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


class RateLimit:
    """A token bucket per address: ``burst`` requests at once, then ``per_second``.

    Used for the public key, which anyone can read from a web page: it bounds what one
    address can send with it.
    """

    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, address: str) -> float:
        """Take one token for ``address``: 0 when it may go on, else seconds to wait. O(1)."""
        now = self.clock()
        tokens, last = self._buckets.pop(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[address] = (tokens, now)  # most recent last: the oldest go first
        while len(self._buckets) > MAX_ADDRESSES:
            del self._buckets[next(iter(self._buckets))]
        return 0.0 if allowed else (1 - tokens) / self.per_second


def same_origin(origin: str | None, host: str | None) -> bool:
    """CSRF check for state-changing requests: an ``Origin``, when sent, must be this host.

    Browsers send ``Origin`` on every cross-site request that changes state, so a missing
    header means a non-browser client (curl, a script), which CSRF cannot reach.
    """
    if origin is None:
        return True
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()
