"""The web dashboard: the page at ``/``, its static files, and the security headers.

The page is one HTML shell; ``static/app.js`` draws every view from the JSON API and the
live stream. The chart library is fetched from the npm registry into ``static/vendor/`` by
``make assets``; without it the page still shows every number and table, and says so where
a chart would be.
"""

from __future__ import annotations

from pathlib import Path

from quart import Quart, Response, request

STATIC = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
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
    async def index() -> Response:
        response = await web.send_static_file("index.html")
        response.headers["Cache-Control"] = "no-cache"
        return response

    @web.get("/engauge.js")
    async def tracker() -> Response:
        response = await web.send_static_file("engauge.js")
        # Pages everywhere load it: cache it for an hour, then revalidate (ETag).
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @web.get("/login")
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
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
