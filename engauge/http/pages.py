"""The web dashboard: the page at ``/``, its static files, and the security headers.

The page is one HTML shell; ``static/app.js`` draws every view from the JSON API and the
live stream. The chart library is fetched from the npm registry into ``static/vendor/`` by
``make assets``; without it the page still shows every number and table, and says so where
a chart would be.
"""

from __future__ import annotations

from pathlib import Path

from quart import Quart, Response, request

from engauge.http.openapi import Operation, documented

STATIC = Path(__file__).parent / "static"
PAGE = Operation("The dashboard", "pages", {200: None}, content=("text/html",), security=())
STATIC_FILES = Operation(
    "The dashboard's scripts, styles and chart library",
    "pages",
    {200: None},
    errors=(404,),
    content=("application/octet-stream",),
    security=(),
)

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
"""The hash of an empty ``<style>``: the API reference's viewer (Redoc, styled-components)
creates empty style elements and fills them through the CSS object model, which a policy
does not restrict; allowing exactly those keeps ``'unsafe-inline'`` out."""
REFERENCE_POLICY = {
    **POLICY,
    "style-src": f"'self' {EMPTY_STYLE}",
    "font-src": "'self' data:",
    "worker-src": "'self' blob:",
}


def content_security_policy(policy: dict[str, str]) -> str:
    return "; ".join(f"{name} {sources}" for name, sources in policy.items())


CONTENT_SECURITY_POLICY = content_security_policy(POLICY)
CONTENT_SECURITY_POLICIES = {"/docs": content_security_policy(REFERENCE_POLICY)}
"""Pages whose policy differs from the dashboard's."""
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_pages(web: Quart) -> None:
    """Serve the dashboard page at ``/`` and give every answer the security headers."""
    web.config["SEND_FILE_MAX_AGE_DEFAULT"] = None  # no Expires: files are revalidated instead

    @web.get("/")
    @documented(PAGE)
    async def index() -> Response:
        response = await web.send_static_file("index.html")
        response.headers["Cache-Control"] = "no-cache"
        return response

    @web.get("/engauge.js")
    @documented(
        Operation(
            "The browser tracker",
            "pages",
            {200: None, 304: None},
            content=("text/javascript",),
            security=(),
        )
    )
    async def tracker() -> Response:
        response = await web.send_static_file("engauge.js")
        # Pages everywhere load it: cache it for an hour, then revalidate (ETag).
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @web.get("/login")
    @documented(Operation("The login page (a redirect)", "pages", {302: None}, security=()))
    async def login_page() -> Response:
        return Response("", status=302, headers={"Location": "/#/login"})

    @web.after_request
    async def secure(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if request.path.startswith("/static/"):
            # Revalidate on every load (a 304 on localhost), so an upgrade is never half-cached.
            response.headers["Cache-Control"] = "no-cache"
        elif response.mimetype == "application/json":
            response.headers["Cache-Control"] = "no-store"  # statistics and tokens: never cached
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICIES.get(
                request.path, CONTENT_SECURITY_POLICY
            )
        return response
