"""The API reference: an OpenAPI 3.1 document built from the routes and their types.

Each handler carries an :class:`Operation` (its parameters, body and answers, given as the
types of :mod:`engauge.http.shapes`); :func:`document` walks the routing table, so a route
without one cannot be served silently undocumented — building the document fails. The
JSON Schemas come from msgspec, from the same typed dictionaries the handlers are checked
against.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec
from attrs import define, field
from quart import Quart, Response

from engauge import __version__
from engauge.http.shapes import Message

JSON = "application/json"
REF = "#/components/schemas/{name}"
TEXT = {"type": "string"}

SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "api-key",
        "description": "ENGAUGE_APIKEY, or on ingest routes ENGAUGE_PUBLICKEY from an "
        "Origin listed in ENGAUGE_CORS. `Authorization: Bearer KEY` works too.",
    },
    "publicKeyInUrl": {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "ENGAUGE_PUBLICKEY for beacons, which cannot set headers; "
        "the private key is refused in a URL.",
    },
    "tokenCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "token",
        "description": "Set by POST /login; valid for 15 minutes.",
    },
    "basicKey": {
        "type": "http",
        "scheme": "basic",
        "description": "The key as the user name, no password: how Segment's SDKs send it.",
    },
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The token from POST /login (dashboard) or ENGAUGE_METRICSTOKEN (/metrics).",
    },
}
DASHBOARD_AUTH = ("tokenCookie", "bearerToken")
INGEST_AUTH = ("apiKey", "publicKeyInUrl")

STATUS_TEXT = {
    200: "OK",
    202: "Accepted: journaled (in a cluster, held by Redis); it will not be lost",
    204: "No content",
    302: "Redirect",
    304: "Not modified",
    400: "Bad input: the message names the field",
    401: "Not logged in, or a wrong key",
    403: "Refused: another site's Origin",
    404: "No such resource",
    405: "Method not allowed",
    408: "The body took too long to arrive",
    413: "Body too large",
    415: "Unsupported content type",
    429: "Too many requests; see Retry-After",
    501: "Not available on a cluster (ENGAUGE_REDIS)",
    503: "Not available now (recovering, overloaded or disk full); see Retry-After",
}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
}


@define(frozen=True)
class Param:
    """A query, path or header parameter, typed like a body field."""

    name: str
    description: str
    type: Any = str
    where: str = "query"
    required: bool = False


@define(frozen=True)
class Operation:
    """What the document says of one route and method.

    ``answers`` maps a status to the type of its JSON body (``None``: no JSON body);
    error statuses answer :class:`~engauge.http.shapes.Message`. ``content`` gives a
    non-JSON success body its media types. ``body`` maps each media type the request may
    carry to its type (``str`` for text such as NDJSON).
    """

    summary: str
    tag: str
    answers: dict[int, Any]
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    body: dict[str, Any] = field(factory=dict)
    content: tuple[str, ...] = ()
    security: tuple[str, ...] = DASHBOARD_AUTH
    headers: dict[int, dict[str, Any]] = field(factory=dict)
    description: str = ""


F = TypeVar("F", bound=Callable[..., Any])


def documented(operation: Operation) -> Callable[[F], F]:
    """Attach ``operation`` to a handler, for :func:`document` to find."""

    def attach(handler: F) -> F:
        handler.openapi = operation  # type: ignore[attr-defined]
        return handler

    return attach


class Undocumented(LookupError):
    """A route has no :class:`Operation`: document it where it is defined."""


def web_operations(web: Quart, extra: dict[str, Operation]) -> Iterable[tuple[str, str, Operation]]:
    """(path, method, operation) of every route of the Quart app; ``extra`` documents
    endpoints whose handlers are not ours (static files), by endpoint name."""
    for rule in web.url_map.iter_rules():
        handler = web.view_functions[rule.endpoint]
        operation = extra.get(rule.endpoint) or getattr(handler, "openapi", None)
        if operation is None:
            raise Undocumented(f"route {rule.rule} ({rule.endpoint}) has no Operation")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield _openapi_path(rule.rule), method.lower(), operation


def _openapi_path(rule: str) -> str:
    """``/a/<kind>/<anything:name>`` → ``/a/{kind}/{name}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def document(routes: Iterable[tuple[str, str, Operation]]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    routes = sorted(routes, key=lambda route: route[:2])
    types = _types(operation for _, _, operation in routes)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    schema_of = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for path, method, operation in routes:
        paths.setdefault(path, {})[method] = _operation_json(path, operation, schema_of)
    answer: dict[str, Any] = _markdown(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "Engauge",
                "version": __version__,
                "description": "Real-time product analytics: send interactions, read "
                'statistics. Errors are `{"message": ...}` naming the field at fault.',
            },
            "paths": paths,
            "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
        }
    )
    return answer


def _types(operations: Iterable[Operation]) -> list[Any]:
    found: list[Any] = [Message]
    for operation in operations:
        candidates = [*operation.body.values(), *operation.answers.values()]
        candidates += [param.type for param in operation.params]
        for candidate in candidates:
            if candidate is not None and candidate not in found:
                found.append(candidate)
    return found


def _operation_json(path: str, operation: Operation, schema_of: dict[Any, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "summary": operation.summary,
        "tags": [operation.tag],
        "operationId": _operation_id(path, operation),
        "responses": _responses(operation, schema_of),
    }
    if operation.description:
        answer["description"] = operation.description
    parameters = [_parameter(param, schema_of) for param in _params(path, operation)]
    if parameters:
        answer["parameters"] = parameters
    if operation.body:
        answer["requestBody"] = {
            "required": True,
            "content": {
                media: {"schema": schema_of[kind]} for media, kind in operation.body.items()
            },
        }
    answer["security"] = [{name: []} for name in operation.security]
    return answer


def _operation_id(path: str, operation: Operation) -> str:
    words = re.findall(r"[A-Za-z0-9]+", operation.summary)
    return "".join(word.capitalize() for word in words) or path


def _params(path: str, operation: Operation) -> list[Param]:
    """The declared parameters plus one for each ``{name}`` in the path not declared."""
    declared = {param.name for param in operation.params}
    in_path = [
        Param(name, f"the {name}", where="path", required=True)
        for name in re.findall(r"{([^}]+)}", path)
        if name not in declared
    ]
    return [*operation.params, *in_path]


def _parameter(param: Param, schema_of: dict[Any, Any]) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": param.where,
        "required": param.required or param.where == "path",
        "description": param.description,
        "schema": schema_of[param.type],
    }


def _responses(operation: Operation, schema_of: dict[Any, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, kind in operation.answers.items():
        entry: dict[str, Any] = {"description": STATUS_TEXT[status]}
        if kind is not None:
            entry["content"] = {JSON: {"schema": schema_of[kind]}}
        elif operation.content and status < 300:
            entry["content"] = {kind: {"schema": TEXT} for kind in operation.content}
        if status in operation.headers:
            entry["headers"] = operation.headers[status]
        responses[str(status)] = entry
    for status in operation.errors:
        responses[str(status)] = {
            "description": STATUS_TEXT[status],
            "content": {JSON: {"schema": schema_of[Message]}},
            **({"headers": RETRY_AFTER} if status in (429, 503) else {}),
        }
    return responses


def _markdown(value: Any) -> Any:
    """Docstrings use reStructuredText's ````code````; the document's text is Markdown."""
    if isinstance(value, str):
        return value.replace("``", "`")
    if isinstance(value, dict):
        return {key: _markdown(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_markdown(item) for item in value]
    return value


def add_reference(web: Quart, ingest: list[tuple[str, str, Operation]], static: Operation) -> None:
    """Serve the document at ``/openapi.json`` and its viewer at ``/docs``.

    The document is built here, once every route is registered, so a route without an
    :class:`Operation` stops start-up instead of going unmentioned.
    """

    @web.get("/openapi.json")
    @documented(Operation("This document", "reference", {200: None}, content=(JSON,), security=()))
    async def openapi() -> Response:
        return Response(body, content_type=JSON)

    @web.get("/docs")
    @documented(
        Operation(
            "The API reference", "reference", {200: None}, content=("text/html",), security=()
        )
    )
    async def docs() -> Response:
        response = await web.send_static_file("docs.html")
        response.headers["Cache-Control"] = "no-cache"
        return response

    body = msgspec.json.encode(document([*web_operations(web, {"static": static}), *ingest]))
