"""Login routes and the guards the dashboard uses: ``/login``, ``/refresh-token``, ``/logout``."""

from __future__ import annotations

from quart import Blueprint, Response, request

from engauge.http.auth import TOKEN_SECONDS, Accounts, LoginThrottle, same_origin
from engauge.http.errors import ApiError
from engauge.http.jsonio import json_response, request_json
from engauge.http.openapi import JSON, Operation, documented
from engauge.http.shapes import Credentials, Message, Token

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def check_origin() -> None:
    """Refuse a state-changing request whose ``Origin`` is another site (CSRF)."""
    if request.method not in SAFE_METHODS and not same_origin(
        request.headers.get("Origin"), request.host
    ):
        raise ApiError(403, "Origin does not match this host; cross-site requests are refused")


def require_login(accounts: Accounts) -> None:
    """Refuse a request without a valid token in the cookie or ``Authorization: Bearer``."""
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        token: str | None = authorization[7:].strip()
    else:
        token = request.cookies.get("token")
    if token is None or not accounts.verify(token):
        raise ApiError(
            401, "log in first: POST /login, then send the token cookie or Authorization: Bearer"
        )


def login_routes(accounts: Accounts, https: bool) -> Blueprint:
    """The account routes; the cookie is ``Secure`` when ``https`` is on."""
    routes = Blueprint("login", __name__)
    throttle = LoginThrottle()

    def token_response() -> Response:
        token = accounts.issue()
        response = json_response({"token": token, "tokenExpiry": TOKEN_SECONDS})
        _set_cookie(response, token, TOKEN_SECONDS, https)
        return response

    @routes.post("/login")
    @documented(
        Operation(
            "Log in: the token comes back and as the `token` cookie",
            "accounts",
            {200: Token},
            errors=(400, 401, 403, 408, 413, 429),
            body={JSON: Credentials},
            security=(),
        )
    )
    async def login() -> Response:
        check_origin()
        address = request.remote_addr or "unknown"
        wait = throttle.retry_after(address)
        if wait > 0:
            raise ApiError(
                429,
                f"too many failed logins; try again in {wait:.0f} s",
                [(b"retry-after", str(max(1, round(wait))).encode())],
            )
        credentials = await request_json()
        if not isinstance(credentials, dict):
            raise ApiError(400, "body: send a JSON object with username and password")
        for name in ("username", "password"):
            if not isinstance(credentials.get(name), str):
                raise ApiError(400, f"{name}: required, as a string")
        if not accounts.check(credentials["username"], credentials["password"]):
            throttle.failed(address)
            raise ApiError(401, "username or password is wrong")
        throttle.succeeded(address)
        return token_response()

    @routes.get("/refresh-token")
    @documented(Operation("A fresh token", "accounts", {200: Token}, errors=(401,)))
    async def refresh_token() -> Response:
        require_login(accounts)
        return token_response()

    @routes.get("/logout")
    @documented(Operation("Log out: clears the cookie", "accounts", {200: Message}, security=()))
    async def logout() -> Response:
        response = json_response({"message": "logged out"})
        _set_cookie(response, "", 0, https)
        return response

    return routes


def _set_cookie(response: Response, token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        "token", token, max_age=max_age, httponly=True, samesite="Strict", secure=secure, path="/"
    )
