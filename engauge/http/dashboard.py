"""The dashboard JSON API (SPEC §6): summaries, series, breakdown lists and details, settings.

Every handler only reads the aggregator's state between two batches (trio runs one task
at a time and the aggregator never awaits mid-batch), so answers are consistent without
locks.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import trio
from msgspec import Meta
from quart import Blueprint, Response, request
from werkzeug.routing import PathConverter

from engauge.http.errors import ApiError
from engauge.http.export import FORMATS, RawReader, export_stream
from engauge.http.jsonio import json_response, request_json
from engauge.http.live import MAX_STREAMS, RETRY_SECONDS, Broadcaster, StreamsFull
from engauge.http.openapi import JSON, Operation, Param, documented
from engauge.http.shapes import (
    Bounds,
    Erasure,
    ProfileDetail,
    ProfileRow,
    PropertyDetail,
    PropertyRow,
    Series,
    SettingsPatch,
    Summary,
)
from engauge.stream.aggregator import Aggregator
from engauge.stream.bucket import Bucket, Profile
from engauge.stream.calendar import ALL_TIME, EARLIEST, INTERVALS, LATEST
from engauge.stream.settings import InvalidSettings, Settings, apply_patch
from engauge.stream.shapes import ProfileFigures, SettingsJson, SummaryFigures
from engauge.stream.summary import (
    PROFILE_KINDS,
    identity_json,
    lookup,
    metric_paths,
    profile_figures,
    profile_json,
    property_json,
    summary_figures,
    summary_json,
)
from engauge.stream.timestamps import TimestampError, parse_timestamp

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_POINTS = 1000

IntervalName: Any = Literal[(ALL_TIME, *INTERVALS)]
CalendarName: Any = Literal[INTERVALS]
ExportFormat: Any = Literal[tuple(FORMATS)]
AT = Param("at", "a time in the bucket wanted (default now): Unix seconds or a date-time")
INTERVAL = Param("interval", "allTime or a calendar interval", IntervalName, where="path")
KIND = Param("kind", "what to list", Literal[PROFILE_KINDS], where="path")
PAGE = (
    Param("offset", "rows to skip", Annotated[int, Meta(ge=0)]),
    Param("limit", "rows to return", Annotated[int, Meta(ge=1, le=MAX_LIMIT)]),
    Param("sort", "a field of the rows, `-` first for descending (default -total)"),
)
TOTAL_COUNT = {"x-total-count": {"description": "rows in all", "schema": {"type": "integer"}}}


class AnythingConverter(PathConverter):
    """A property name as the last part of a path: anything, even a leading or double ``/``."""

    regex = ".+"
    part_isolating = False


class DashboardApi:
    """Answers the dashboard resources from the aggregator's state.

    ``save_settings`` persists changed settings. ``read_raw`` and ``erase`` reach the raw
    interactions; without them (a cluster) export and erasure answer ``501``.
    """

    def __init__(
        self,
        aggregator: Aggregator,
        save_settings: Callable[[Settings], Awaitable[None]],
        *,
        read_raw: RawReader | None,
        erase: Callable[[tuple[str, str]], int] | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.erase = erase
        self.aggregator = aggregator
        self.calendar = aggregator.calendar
        self.save_settings = save_settings
        self.read_raw = read_raw
        self.live = Broadcaster(self.current_figures, lambda: aggregator.version)
        self.clock = clock
        self._settings_lock = trio.Lock()

    def blueprint(self) -> Blueprint:
        routes = Blueprint("dashboard", __name__, url_prefix="/dashboard")
        converters = {"anything": AnythingConverter}
        routes.record_once(lambda state: state.app.url_map.converters.update(converters))
        routes.add_url_rule("/summaries", view_func=self.summaries)
        routes.add_url_rule("/stream", view_func=self.stream)
        routes.add_url_rule("/summaries/<interval>", view_func=self.summary)
        routes.add_url_rule("/series", view_func=self.series)
        routes.add_url_rule("/properties", view_func=self.property_list)
        routes.add_url_rule("/properties/<anything:name>", view_func=self.property_detail)
        routes.add_url_rule("/settings", view_func=self.get_settings, methods=["GET"])
        routes.add_url_rule("/settings", view_func=self.put_settings, methods=["PUT"])
        routes.add_url_rule("/export/interactions", view_func=self.export)
        routes.add_url_rule("/users", view_func=self.erase_user, methods=["DELETE"])
        kind = f"<any({', '.join(PROFILE_KINDS)}):kind>"
        routes.add_url_rule(f"/{kind}", view_func=self.profile_list)
        routes.add_url_rule(f"/{kind}/<profile_id>", view_func=self.profile_detail)
        return routes

    # -- summaries ---------------------------------------------------------------------

    @documented(
        Operation(
            "The current bucket of each enabled interval",
            "statistics",
            {200: list[Bounds]},
            errors=(401,),
        )
    )
    async def summaries(self) -> Response:
        now = self.clock()
        return json_response([self._bounds(name, now) for name in self._intervals()])

    def current_figures(self) -> list[dict[str, Any]]:
        """The numbers of the current bucket of every enabled interval: the live stream's."""
        now = self.clock()
        return [
            {**self._bounds(name, now), **summary_figures(self.aggregator.bucket(name, now)[2])}
            for name in self._intervals()
        ]

    @documented(
        Operation(
            "Live summaries (server-sent events)",
            "statistics",
            {200: None},
            errors=(401, 503),
            content=("text/event-stream",),
            description="A `summary` event whose data is a JSON array of CurrentFigures, "
            "at most once a second while data changes; a `: heartbeat` comment every 15 s.",
        )
    )
    async def stream(self) -> Response:
        try:
            events = self.live.stream()
        except StreamsFull:
            raise ApiError(
                503,
                f"{MAX_STREAMS} live streams are open, the most Engauge serves; "
                "close another dashboard tab or retry later",
                [(b"retry-after", str(RETRY_SECONDS).encode())],
            ) from None
        response = Response(
            events,
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        response.timeout = None  # a stream lasts as long as the client stays
        return response

    @documented(
        Operation(
            "The summary of one bucket",
            "statistics",
            {200: Summary},
            errors=(400, 401, 404),
            params=(INTERVAL, AT),
        )
    )
    async def summary(self, interval: str) -> Response:
        self._check_interval(interval)
        at = self._instant("at", self.clock())
        _, _, bucket = self.aggregator.bucket(interval, at)
        return json_response({**self._bounds(interval, at), **summary_json(bucket)})

    def _bounds(self, interval: str, at: float) -> dict[str, Any]:
        start, end, _ = self.aggregator.bucket(interval, at)
        label = self.calendar.label
        return {
            "id": interval if start is None else f"{interval}:{label(start)}",
            "interval": interval,
            "start": None if start is None else label(start),
            "end": None if end is None else label(end),
        }

    def _intervals(self) -> list[str]:
        return [ALL_TIME, *self.aggregator.settings.enabled()]

    def _check_interval(self, interval: str) -> None:
        if interval != ALL_TIME and interval not in INTERVALS:
            raise ApiError(
                404, f"no interval {interval!r}; use one of {ALL_TIME}, {', '.join(INTERVALS)}"
            )
        if interval not in self._intervals():
            raise ApiError(400, f"interval {interval!r} is disabled; enable it in settings")

    # -- series ------------------------------------------------------------------------

    @documented(
        Operation(
            "Figures over a range of buckets, for charts",
            "statistics",
            {200: Series},
            errors=(400, 401, 404),
            params=(
                Param("interval", "a calendar interval (default daily)", CalendarName),
                Param("from", "the first bucket: contains this time (default: retention)"),
                Param("to", "the end of the range (default now)"),
                Param("metrics", "comma-separated summary paths: total, sessions.started, …"),
                Param("scope", "endpoint:ID, origin:ID or entity:ID; none for the whole bucket"),
            ),
        )
    )
    async def series(self) -> Response:
        interval = request.args.get("interval", "daily")
        self._check_interval(interval)
        if interval == ALL_TIME:
            raise ApiError(400, "interval: a series needs a calendar interval such as daily")
        now = self.clock()
        end = self._instant("to", now)
        earliest_shown = self.calendar.shift(
            interval, self.calendar.start(interval, end), 1 - MAX_POINTS
        )
        default_start = max(self.aggregator.retention_cutoff(interval, now), earliest_shown)
        # Before the kept history, the default range is empty rather than an error.
        start = self._instant("from", min(default_start, end))
        if start >= end and request.args.get("from"):
            raise ApiError(400, "from: must be before to")
        kind, key = self._scope(request.args.get("scope"))
        metrics = self._metrics(request.args.get("metrics", "total"), kind)
        buckets = self.aggregator.buckets[interval]
        points: list[dict[str, Any]] = []
        for bucket_start in self.aggregator.bucket_starts(interval, start, end):
            if len(points) == MAX_POINTS:
                raise ApiError(400, f"from/to: more than {MAX_POINTS} points; narrow the range")
            figures = self._figures(buckets.get(bucket_start) or Bucket(), kind, key)
            point = {"start": self.calendar.label(bucket_start)}
            point.update((metric, lookup(figures, metric)) for metric in metrics)
            points.append(point)
        return json_response({"interval": interval, "points": points})

    def _scope(self, scope: str | None) -> tuple[str | None, Any]:
        if not scope:
            return None, None
        kind, _, profile_id = scope.partition(":")
        if kind not in PROFILE_KINDS or not profile_id:
            raise ApiError(400, "scope: use endpoint:ID, origin:ID or entity:ID")
        return kind, self._profile_key(kind, profile_id)

    def _metrics(self, value: str, kind: str | None) -> list[str]:
        metrics = [metric.strip() for metric in value.split(",") if metric.strip()]
        known = metric_paths(self._figures(Bucket(), kind, None))
        for metric in metrics:
            if metric not in known:
                raise ApiError(
                    400, f"metrics: unknown metric {metric!r}; use one of {', '.join(known)}"
                )
        if not metrics:
            raise ApiError(400, "metrics: name at least one metric, such as total")
        return metrics

    def _figures(
        self, bucket: Bucket, kind: str | None, key: Any
    ) -> SummaryFigures | ProfileFigures:
        if kind is None:
            return summary_figures(bucket)
        profile = self.aggregator.profiles(kind, bucket).get(key) or Profile()
        return profile_figures(kind, profile)

    # -- endpoints, origins, entities --------------------------------------------------

    @documented(
        Operation(
            "Endpoints, origins or entities, with their all-time numbers",
            "breakdowns",
            {200: list[ProfileRow]},
            errors=(400, 401, 404),
            params=(KIND, *PAGE),
            headers={200: TOTAL_COUNT},
        )
    )
    async def profile_list(self, kind: str) -> Response:
        rows = [
            {**identity_json(kind, key), **profile_figures(kind, profile)}
            for key, profile in self.aggregator.profiles(kind).items()
        ]
        return self._page(rows, "-total")

    @documented(
        Operation(
            "One endpoint, origin or entity in the bucket of every interval",
            "breakdowns",
            {200: ProfileDetail},
            errors=(400, 401, 404),
            params=(KIND, Param("profile_id", "its id, from the list", where="path"), AT),
        )
    )
    async def profile_detail(self, kind: str, profile_id: str) -> Response:
        key = self._profile_key(kind, profile_id)
        at = self._instant("at", self.clock())
        stats = {}
        for interval in self._intervals():
            _, _, bucket = self.aggregator.bucket(interval, at)
            profile = self.aggregator.profiles(kind, bucket).get(key) or Profile()
            stats[interval] = {**self._bounds(interval, at), **profile_json(kind, profile)}
        return json_response({**identity_json(kind, key), "stats": stats})

    def _profile_key(self, kind: str, profile_id: str) -> Any:
        try:
            return self.aggregator.profile_key(kind, profile_id)
        except KeyError:
            raise ApiError(404, f"no {kind} with id {profile_id!r}") from None

    # -- properties --------------------------------------------------------------------

    @documented(
        Operation(
            "Properties, with how many interactions carry each",
            "breakdowns",
            {200: list[PropertyRow]},
            errors=(400, 401),
            params=PAGE,
            headers={200: TOTAL_COUNT},
        )
    )
    async def property_list(self) -> Response:
        rows = [
            {"id": name, "name": name, "types": sorted(stats.types), "total": stats.count}
            for name, stats in self.aggregator.all_time.properties.items()
        ]
        return self._page(rows, "-total")

    @documented(
        Operation(
            "One property all-time and in the bucket of every enabled interval",
            "breakdowns",
            {200: PropertyDetail},
            errors=(400, 401, 404),
            params=(Param("name", "the property's name (it may contain /)", where="path"), AT),
        )
    )
    async def property_detail(self, name: str) -> Response:
        stats = self.aggregator.all_time.properties.get(name)
        if stats is None:
            raise ApiError(404, f"no property {name!r}")
        at = self._instant("at", self.clock())
        answer: dict[str, Any] = {
            "id": name,
            "types": sorted(stats.types),
            "stats": property_json(stats),
        }
        for interval in self.aggregator.settings.enabled():
            _, _, bucket = self.aggregator.bucket(interval, at)
            found = bucket.properties.get(name)
            answer[f"{interval}Stats"] = None if found is None else property_json(found)
        return json_response(answer)

    # -- export ------------------------------------------------------------------------

    @documented(
        Operation(
            "Raw interactions, streamed",
            "data",
            {200: None},
            errors=(400, 401, 501),
            params=(
                Param("from", "the earliest receipt time (default: the oldest kept)"),
                Param("to", "the end of the range (default: now)"),
                Param("format", "ndjson (default) or csv", ExportFormat),
            ),
            content=tuple(FORMATS.values()),
        )
    )
    async def export(self) -> Response:
        if self.read_raw is None:
            raise _not_in_cluster("export")
        if not self.aggregator.settings.interactions:
            raise ApiError(
                400, "interactions: raw interactions are not kept; enable it in settings first"
            )
        form = request.args.get("format", "ndjson")
        if form not in FORMATS:
            raise ApiError(400, f"format: use one of {', '.join(FORMATS)}")
        start = self._instant("from", EARLIEST)
        end = self._instant("to", LATEST)
        body = export_stream(self.read_raw, start, end, form, self.calendar.label)
        disposition = f'attachment; filename="interactions.{form}"'
        return Response(
            body,
            content_type=FORMATS[form],
            headers={"Content-Disposition": disposition},
        )

    # -- erasure -----------------------------------------------------------------------

    @documented(
        Operation(
            "Erase a person's raw interactions",
            "data",
            {200: Erasure},
            errors=(400, 401, 403, 501),
            params=(
                Param("userID", "the person's userID", required=True),
                Param("userType", "their userType, when they have one"),
            ),
        )
    )
    async def erase_user(self) -> Response:
        """Erase a person's raw interactions: recorded durably first, then their open
        session ends and the archive is rewritten without them; the counts stay."""
        user_id = request.args.get("userID", "")
        if not user_id:
            raise ApiError(400, "userID: required (and userType, when the person has one)")
        user = (request.args.get("userType", ""), user_id)
        if self.erase is None:
            raise _not_in_cluster("erasure")
        removed = await trio.to_thread.run_sync(self.erase, user)
        ended = self.aggregator.end_session(user)
        return json_response(
            {
                "userID": user_id,
                "userType": user[0],
                "archivedInteractionsRemoved": removed,
                "openSessionEnded": ended,
                "export": "excludes this person from now on",
            }
        )

    # -- settings ----------------------------------------------------------------------

    @documented(Operation("The settings", "settings", {200: SettingsJson}, errors=(401,)))
    async def get_settings(self) -> Response:
        return json_response(self.aggregator.settings.to_json())

    @documented(
        Operation(
            "Change settings: a partial object is merged",
            "settings",
            {200: SettingsJson},
            errors=(400, 401, 403, 408, 413),
            body={JSON: SettingsPatch},
        )
    )
    async def put_settings(self) -> Response:
        patch = await request_json()
        # One change at a time: read, save and apply together, or a concurrent change
        # could be lost or leave the file and the memory disagreeing.
        async with self._settings_lock:
            try:
                settings = apply_patch(self.aggregator.settings, patch)
            except InvalidSettings as error:
                raise ApiError(400, str(error)) from None
            await self.save_settings(settings)
            self.aggregator.update_settings(settings)
        return json_response(settings.to_json())

    # -- shared ------------------------------------------------------------------------

    def _instant(self, name: str, default: float) -> float:
        value = request.args.get(name)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except ValueError:
            number = None
        try:
            return parse_timestamp(value if number is None else number, self.calendar.zone)
        except TimestampError as error:
            raise ApiError(400, f"{name}: {error}") from None

    def _page(self, rows: list[dict[str, Any]], default_sort: str) -> Response:
        offset = _whole_number("offset", 0, 0, None)
        limit = _whole_number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        sort = request.args.get("sort", default_sort)
        descending = sort.startswith("-")
        field = sort.lstrip("-+")
        if rows and not _has_path(rows[0], field):
            raise ApiError(400, f"sort: cannot sort by {field!r}; use a field of the rows")
        present = [row for row in rows if lookup(row, field) is not None]
        absent = [row for row in rows if lookup(row, field) is None]
        present.sort(key=lambda row: lookup(row, field), reverse=descending)
        ordered = present + absent
        headers = {"x-total-count": str(len(rows))}
        return json_response(ordered[offset : offset + limit], headers=headers)


def _not_in_cluster(what: str) -> ApiError:
    return ApiError(
        501,
        f"{what} of raw interactions is not available in a cluster (ENGAUGE_REDIS is set): "
        "their only copy is the partition streams, trimmed once snapshots cover them",
    )


def _has_path(row: dict[str, Any], path: str) -> bool:
    try:
        lookup(row, path)
    except KeyError:
        return False
    return True


def _whole_number(name: str, default: int, low: int, high: int | None) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    number = int(value) if value.isascii() and value.isdigit() else -1
    if number < low or (high is not None and number > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ApiError(400, f"{name}: must be a whole number {bound}")
    return number
