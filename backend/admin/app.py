"""Routes of the admin API (powertools' APIGatewayHttpResolver). Each route: validate, call a store, shape.

Auth: `Authorization: Bearer <JWT>` with the `admin` role, verified like player tokens. No or bad token
-> 401, a player's token -> 403. `/admin/health` and `/admin/openapi.json` are public. Every error is
`{"error": {"code", "message"}}` with the status of its GameError class (backend.errors).

`handle` admits a request before the resolver sees it (`admit`): powertools runs its request validation
ahead of every middleware, so checks made in middlewares would answer 422 to an unauthenticated caller or
to a body that is not JSON at all. The order of refusals is: a path with a control character (400), no
valid admin token (401/403), a body that is not `application/json` (415), a body that is not strict JSON
(400, backend.wirejson), and only then the resolver's validation (422).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from backend import auth, wirejson
from backend.admin import models as m
from backend.aws import failed_dependency
from backend.config import Settings
from backend.errors import (
    BadRequest,
    Forbidden,
    GameError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from backend.ids import (
    CONNECTION_ID_PATTERN,
    MATCH_ID_PATTERN,
    PLAYER_ID_PATTERN,
    ConnectionId,
    MatchId,
    PlayerId,
)
from backend.protocol import Board, GameEvent, Mode, Notice, Period, PlayerState
from backend.push import Pusher
from backend.store.connections import ConnectionStore
from backend.store.events import EventLog
from backend.store.health import Health
from backend.store.matches import MatchStore
from backend.store.stream import ActionStream
from backend.store.streamstats import QueueDepths, StreamStats
from backend.vocabulary import MatchStatus

if TYPE_CHECKING:
    from backend import rankings
    from backend.store.leaderboards import LeaderboardStore, Row

logger = Logger(child=True)
# What powertools lets a `<name>` path segment hold (its documented URI-safe and unsafe characters).
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"


class _Resolver(APIGatewayHttpResolver):
    """powertools' resolver, keeping its own table of which methods each path has, for the 405s
    (every `get`/`post`/`delete` decorator goes through `route`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.methods: list[tuple[re.Pattern[str], str]] = []

    def route(self, rule: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        pattern = re.compile("^" + re.sub(r"<\w+>", lambda _: _SEGMENT, rule) + "$")
        for verb in [method] if isinstance(method, str) else method:
            self.methods.append((pattern, verb.upper()))
        return super().route(rule, method, *args, **kwargs)

    def methods_at(self, path: str) -> list[str]:
        return sorted({m for pattern, m in self.methods if pattern.match(path)})


# The resolver parses bodies with the same strict parser that admit() has already run on them.
app = _Resolver(enable_validation=True, json_body_deserializer=wirejson.loads)
PUBLIC = {"/admin/health", "/admin/openapi.json"}
_DESCRIPTIONS = {
    400: "Bad request (a control character in the path, an invalid cursor, a body that is not JSON)",
    401: "Missing or invalid bearer token",
    403: "The token is not an admin's",
    404: "No such resource",
    415: "The body is not application/json (UTF-8)",
    422: "A parameter or the body failed validation",
    503: "A backend dependency failed; retry",
}


def errors(*extra: int, ok: Any = None, public: bool = False) -> dict[int, Any]:
    """A route's responses for the OpenAPI document: its success model (as 200) and its errors, all with
    the same JSON body. (powertools documents the return annotation only when `responses` is not given.)"""
    codes = {400, 422, 503, *extra} | (set() if public else {401, 403})
    body = {"application/json": {"model": m.ErrorBody}}
    documented = {code: {"description": _DESCRIPTIONS[code], "content": body} for code in sorted(codes)}
    return {**success(200, ok, "OK"), **documented} if ok is not None else documented


def success(status: int, model: Any, description: str) -> dict[int, Any]:
    return {status: {"description": description, "content": {"application/json": {"model": model}}}}


BoardPath = Annotated[Board, Path(description="a board of serverless.yml custom.leaderboards")]
MatchIdPath = Annotated[str, Path(pattern=MATCH_ID_PATTERN)]
PlayerIdPath = Annotated[str, Path(pattern=PLAYER_ID_PATTERN)]
PeriodQuery = Annotated[Period, Query()]
LimitQuery = Annotated[int, Query(ge=1, le=100)]
# Opaque: what a previous page returned as nextCursor or prevCursor (base64url).
CursorQuery = Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+={0,2}$")]


@dataclass(frozen=True)
class AdminDeps:
    """What the admin routes use. The admin handler builds it once per execution environment (its
    composition root) and hands it to `handle`, which gives it to the routes that declare `Deps`."""

    # Built by the first leaderboard route: the board machinery (backend.rankings, the boards' specs) is
    # for those routes, not for the stats the console polls every second.
    make_leaderboards: Callable[[], LeaderboardStore]
    events: EventLog
    matches: MatchStore
    connections: ConnectionStore
    stream: ActionStream
    stream_stats: StreamStats
    queues: QueueDepths
    health: Health
    pusher: Pusher
    settings: Settings

    @cached_property
    def leaderboards(self) -> LeaderboardStore:
        return self.make_leaderboards()


def _deps() -> AdminDeps:
    deps: AdminDeps = app.context["deps"]
    return deps


# powertools resolves it per request (Depends), and keeps it out of the OpenAPI document.
Deps = Annotated[AdminDeps, Depends(_deps)]


# --- errors and auth -----------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": {"code": code, "message": message}}),
    )


@app.exception_handler(GameError)
def _game_error(exc: GameError) -> Response[Any]:
    return _error(exc.status, exc.code, exc.message)


@app.exception_handler(RequestValidationError)
def _invalid(exc: RequestValidationError) -> Response[Any]:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e.get('msg', e['type'])}"
        for e in exc.errors()[:5]
    )
    return _error(InvalidRequest.status, InvalidRequest.code, problems or "invalid request")


@app.not_found
def _not_found(exc: NotFoundError) -> Response[Any]:
    event = app.current_event
    allowed = app.methods_at(event.path)
    # With its own method among them, the path names a route but a segment is outside its grammar: 404.
    if allowed and event.http_method not in allowed:
        response = _error(
            MethodNotAllowed.status, MethodNotAllowed.code, f"{event.http_method} is not allowed here"
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return _error(NotFound.status, NotFound.code, "no such route")


@app.exception_handler(RequestUnsupportedContentType)
def _wrong_content_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    return _error(UnsupportedMediaType.status, UnsupportedMediaType.code, "send the body as application/json")


def _server_error(exc: Exception) -> Response[Any]:
    logger.exception("admin request failed")
    if failed_dependency(exc):
        return _error(Unavailable.status, Unavailable.code, "a backend dependency failed; retry")
    return _error(GameError.status, GameError.code, "internal error")


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[Any]:
    return _server_error(exc)


# --- admission: what is refused before the resolver runs -------------------------------------------

_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # control characters and the space


def handle(event: dict[str, Any], context: Any, deps: AdminDeps) -> dict[str, Any]:
    """The Lambda's entry: admit the request, then resolve it with `deps`."""
    logger.remove_keys(["admin"])  # a warm environment must not log the previous request's admin
    try:
        admitted = admit(event)
    except GameError as exc:
        app.clear_context()
        return {
            "statusCode": exc.status,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": json.dumps({"error": {"code": exc.code, "message": exc.message}}),
            "isBase64Encoded": False,
        }
    app.append_context(deps=deps)
    return app.resolve(admitted, context)


def admit(event: dict[str, Any]) -> dict[str, Any]:
    """Raises the GameError a request is refused with, or returns the event the resolver may see."""
    path = str((event.get("requestContext") or {}).get("http", {}).get("path") or event.get("rawPath") or "")
    if _CONTROL.search(path):
        # The resolver's route patterns end in `$`, which also matches before a final newline: for
        # `/admin/leaderboards/global%0a` it would quietly serve `global`.
        raise BadRequest("the path holds a control character or a space")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    if path not in PUBLIC:
        _authenticate(headers.get("authorization") or "")
    body = event.get("body")
    # Media types are case-insensitive (RFC 9110); the resolver compares them as written, and for a
    # form type it parses the (absent) body itself and raises a bare ValueError: it sees JSON or nothing.
    others = {k: v for k, v in (event.get("headers") or {}).items() if str(k).lower() != "content-type"}
    if not body:
        return {**event, "headers": others}
    media_type, _, params = headers.get("content-type", "").partition(";")
    charset = re.search(r"charset\s*=\s*\"?([^\s\";]+)", params, re.IGNORECASE)
    if media_type.strip().lower() != "application/json" or (charset and charset[1].lower() != "utf-8"):
        raise UnsupportedMediaType("send the body as application/json (UTF-8)")
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else str(body).encode()
        wirejson.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, wirejson.NotJson) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    return {**event, "headers": {**others, "content-type": "application/json"}}


def _authenticate(header: str) -> None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    claims = auth.verify_from_settings(token)
    if claims.role != "admin":
        raise Forbidden("an admin token is required")
    app.append_context(admin=claims.player_id)
    logger.append_keys(admin=claims.player_id)


def _admin() -> str:
    return str(app.context.get("admin", "unknown"))


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def _decode(cursor: str) -> Any:
    try:
        return wirejson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:  # binascii.Error, NotJson
        raise BadRequest("invalid cursor") from exc


# A cursor is opaque to clients but not to this module: it is taken back only in the exact shape a page
# returned, so a forged one is a 400 here instead of a TypeError, an OverflowError or a ValidationException
# (or botocore's ParamValidationError) further down.
_INT64 = 2**63


def _int(value: Any, low: int = -_INT64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < _INT64:
        raise BadRequest("invalid cursor")
    return value


def _key_cursor(cursor: str, shape: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A DynamoDB start key as a previous page returned it: exactly the attributes of `shape`, each
    typed (`S`, `N`) as the key schema types it and matching its pattern."""
    raw = _decode(cursor)
    if not isinstance(raw, dict) or set(raw) != set(shape):
        raise BadRequest("invalid cursor")
    for attr, (kind, pattern) in shape.items():
        value = raw[attr]
        if not (
            isinstance(value, dict)
            and list(value) == [kind]
            and isinstance(value[kind], str)
            and re.fullmatch(pattern, value[kind])
        ):
            raise BadRequest("invalid cursor")
    return raw


# --- leaderboards ----------------------------------------------------------------------------------


def _target(boards: LeaderboardStore, board: str, period: str, season: int | None = None) -> rankings.Target:
    from backend import rankings  # the leaderboard routes' own (not /admin/stats')

    return rankings.target(boards, board, period, season, max_age=0)


def _entries(entries: list[tuple[int, Row]]) -> list[m.Entry]:
    return [
        m.Entry(rank=rank, playerId=r.player_id, score=r.score, subscore=r.subscore) for rank, r in entries
    ]


SeasonQuery = Annotated[int | None, Query(ge=0, description="a past season (default: the current one)")]


@app.get("/admin/leaderboards/<board>", responses=errors(400, 404, ok=m.LeaderboardPage))
def leaderboard_page(
    deps: Deps,
    board: BoardPath,
    period: PeriodQuery = "alltime",
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
    season: SeasonQuery = None,
) -> m.LeaderboardPage:
    from backend import rankings

    t = _target(deps.leaderboards, board, period, season)
    page = rankings.read(deps.leaderboards, t, limit, cursor=cursor)
    prev, nxt = rankings.cursors(page)
    return m.LeaderboardPage(
        board=board,
        period=period,
        season=t.season,
        entries=_entries(page.entries),
        nextCursor=nxt,
        prevCursor=prev,
    )


@app.get("/admin/leaderboards/<board>/players/<playerId>", responses=errors(404, ok=m.PlayerStanding))
def player_standing(
    deps: Deps,
    board: BoardPath,
    playerId: PlayerIdPath,
    period: PeriodQuery = "alltime",
    season: SeasonQuery = None,
    width: Annotated[int, Query(ge=0, le=50, description="neighbours on each side")] = 2,
) -> m.PlayerStanding:
    t = _target(deps.leaderboards, board, period, season)
    found = deps.leaderboards.around(t.board, t.key, playerId, before=width, after=width)
    if found is None:
        raise NotFound(f"{playerId} is not on {board}/{period}")
    rank, row = found.me
    from backend import rankings
    from backend.store.leaderboards import Page

    prev, nxt = rankings.cursors(Page(found.entries, found.more_before, found.more_after))
    return m.PlayerStanding(
        board=board,
        period=period,
        season=t.season,
        playerId=playerId,
        rank=rank,
        score=row.score,
        subscore=row.subscore,
        neighbours=_entries(found.entries),
        prevCursor=prev,
        nextCursor=nxt,
    )


@app.delete("/admin/leaderboards/<board>/players/<playerId>", responses=errors(404, ok=m.Removed))
def remove_player(deps: Deps, board: BoardPath, playerId: PlayerIdPath) -> m.Removed:
    store = deps.leaderboards
    if board not in store.boards:
        raise NotFound(f"no board {board!r} (boards: {', '.join(store.boards.names())})")
    spec = store.boards[board]
    season = _target(store, board, spec.periods[0].name).season
    keys = [spec.key(p.name, datetime.now(UTC), season) for p in spec.periods]
    removed = [k for k in keys if store.remove(k, playerId)]
    if not removed:
        raise NotFound(f"{playerId} is not on {board}")
    deps.events.audit(_admin(), "leaderboard.remove", {"board": board, "playerId": playerId, "keys": removed})
    logger.warning("player removed from leaderboard", extra={"board": board, "playerId": playerId})
    return m.Removed(board=board, playerId=playerId, removed=removed)


@app.post(
    "/admin/leaderboards/<board>/reset", responses={**success(201, m.Season, "The new season"), **errors()}
)
def reset_board(deps: Deps, board: BoardPath) -> Response[Any]:
    if board not in deps.leaderboards.boards:
        raise NotFound(f"no board {board!r}")
    season_no = deps.leaderboards.start_season(board)
    deps.events.audit(_admin(), "leaderboard.reset", {"board": board, "season": season_no})
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=m.Season(board=board, season=season_no).model_dump_json(),
    )


# --- matches -------------------------------------------------------------------------------------


def _logged(version: int, e: GameEvent) -> m.LoggedEvent:
    return m.LoggedEvent(
        version=version,
        eventId=e.eventId,
        type=e.type,
        playerId=e.playerId,
        receivedAt=e.receivedAt,
        actionId=e.actionId,
        kind=e.kind,
        args=e.args,
    )


@app.get("/admin/matches", responses=errors(400, ok=m.MatchPage))
def list_matches(
    deps: Deps,
    status: Annotated[MatchStatus, Query()] = "running",
    mode: Annotated[Mode | None, Query()] = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> m.MatchPage:
    start = None
    if cursor:
        shape = {
            "matchId": ("S", MATCH_ID_PATTERN),
            "status": ("S", re.escape(status)),
            "createdAt": ("N", r"\d{1,15}"),
        }
        start = _key_cursor(cursor, shape)
    found, last = deps.matches.by_status(status, mode=mode, limit=limit, cursor=start)
    return m.MatchPage(
        matches=[m.MatchSummary.model_validate(s) for s in found], nextCursor=_encode(last) if last else None
    )


@app.get("/admin/matches/<matchId>", responses=errors(404, ok=m.MatchDetail))
def get_match(deps: Deps, matchId: MatchIdPath) -> m.MatchDetail:
    store = deps.matches
    stored = store.load(matchId)
    roster = store.roster(matchId)
    match = stored.match
    return m.MatchDetail(
        matchId=match.match_id,
        mode=match.mode,
        status=match.status,
        version=match.version,
        players={p: PlayerState(score=s.score, x=s.x, y=s.y, left=s.left) for p, s in match.players.items()},
        roster=list(roster.players),
        winner=match.winner,
        game=dict(match.game) if match.game else None,
        lastEvents=[_logged(v, e) for v, e in deps.events.recent(matchId, 20)],
    )


@app.get("/admin/matches/<matchId>/events", responses=errors(400, 404, ok=m.EventPage))
def match_events(
    deps: Deps, matchId: MatchIdPath, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> m.EventPage:
    after = _int(_decode(cursor), 0) if cursor else 0
    deps.matches.roster(matchId)  # 404 for an unknown match
    found = deps.events.read(matchId, after_version=after, limit=limit + 1)
    page = found[:limit]
    return m.EventPage(
        matchId=matchId,
        events=[_logged(v, e) for v, e in page],
        nextCursor=_encode(page[-1][0]) if len(found) > limit else None,
    )


@app.post(
    "/admin/matches/<matchId>/end",
    responses={**success(202, m.Accepted, "Queued on the stream"), **errors(404)},
)
def end_match(deps: Deps, matchId: MatchIdPath) -> Response[Any]:
    """Finishes the match through the stream, like a player action: ordered, applied exactly once."""
    deps.matches.roster(matchId)
    event = GameEvent(
        eventId=str(uuid.uuid4()),
        matchId=matchId,
        playerId=_admin(),
        receivedAt=int(time.time() * 1000),
        type="end",
        actionId=f"admin-end-{uuid.uuid4().hex[:8]}",
    )
    deps.stream.publish(event)
    deps.events.audit(_admin(), "match.end", {"matchId": matchId, "eventId": event.eventId})
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=m.Accepted(matchId=matchId, eventId=event.eventId).model_dump_json(),
    )


# --- connections ---------------------------------------------------------------------------------


@app.get("/admin/connections", responses=errors(400, ok=m.ConnectionPage))
def list_connections(
    deps: Deps,
    playerId: Annotated[str | None, Query(pattern=PLAYER_ID_PATTERN)] = None,
    matchId: Annotated[str | None, Query(pattern=MATCH_ID_PATTERN)] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> m.ConnectionPage:
    store = deps.connections
    next_cursor = None
    if playerId is not None:
        found = store.of_player(PlayerId(playerId))
        if matchId is not None:
            found = [c for c in found if c.match_id == matchId]
    elif matchId is not None:
        found = store.in_match(MatchId(matchId))
    else:
        start = _key_cursor(cursor, {"connectionId": ("S", CONNECTION_ID_PATTERN)}) if cursor else None
        found, last = store.all(limit, start)
        next_cursor = _encode(last) if last else None
    return m.ConnectionPage(
        connections=[
            m.ConnectionInfo(
                connectionId=c.connection_id,
                playerId=c.player_id,
                connectedAt=c.connected_at,
                matchId=c.match_id,
            )
            for c in found[:limit]
        ],
        nextCursor=next_cursor,
    )


@app.delete("/admin/connections/<connectionId>", responses={204: {"description": "Closed"}, **errors(404)})
def kick(deps: Deps, connectionId: Annotated[str, Path(pattern=CONNECTION_ID_PATTERN)]) -> Response[Any]:
    if not deps.pusher.delete(connectionId):
        deps.connections.delete(ConnectionId(connectionId))
        raise NotFound("no such connection")
    deps.events.audit(_admin(), "connection.kick", {"connectionId": connectionId})
    return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")


@app.post("/admin/broadcast", responses=errors(404, 415, ok=m.BroadcastResult))
def broadcast(deps: Deps, body: m.Broadcast) -> m.BroadcastResult:
    store = deps.connections
    if body.matchId is not None:
        deps.matches.roster(body.matchId)
        targets = [c.connection_id for c in store.in_match(MatchId(body.matchId))]
    else:
        targets, cursor = [], None
        while True:
            page, cursor = store.all(500, cursor)
            targets += [c.connection_id for c in page]
            if not cursor:
                break
    frame = Notice(message=body.message).model_dump_json()
    report = deps.pusher.send([(cid, frame) for cid in targets])
    for gone in report.gone:
        store.delete(ConnectionId(gone))
    deps.events.audit(_admin(), "broadcast", {"matchId": body.matchId, "sent": report.sent})
    # A push shed by the circuit breaker (the Management API failing) was not sent either.
    return m.BroadcastResult(
        sent=report.sent, gone=len(report.gone), failed=len(report.failed) + len(report.shed)
    )


# --- operations ----------------------------------------------------------------------------------


@app.get(
    "/admin/health",
    security=[{}],  # public: an empty requirement means no credentials
    responses={
        **success(200, m.Health, "Every check passed"),
        **success(503, m.Health, "A check failed"),
        **errors(public=True),
    },
)
def health(deps: Deps) -> Response[Any]:
    checks = deps.health.checks()
    ok = deps.health.healthy(checks)
    body = m.Health(status="ok" if ok else "degraded", checks=checks)
    return Response(
        status_code=200 if ok else 503,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(),
    )


@app.get("/admin/stats", responses=errors(ok=m.Stats))
def stats(deps: Deps) -> m.Stats:
    matches = deps.matches
    stream = deps.stream_stats
    queues = deps.queues
    s = deps.settings
    return m.Stats(
        connections=deps.connections.count(),
        waitingMatches=matches.count_by_status("waiting"),
        runningMatches=matches.count_by_status("running"),
        actionsLastMinute=stream.records_last_minute(),
        streamLagMs=stream.iterator_age_ms(),
        projectorLagMs=stream.iterator_age_ms(s.projector_function),
        deadLetters=queues.depth(s.action_dlq),
        projectorDeadLetters=queues.depth(s.projector_dlq),
    )


@app.get("/admin/audit", responses=errors(400, ok=m.AuditPage))
def audit(
    deps: Deps,
    day: Annotated[
        str | None,
        Query(
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            json_schema_extra={"format": "date"},
            description="a UTC day (default: today)",
        ),
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> m.AuditPage:
    """Operators' actions of one UTC day (today by default), newest first."""
    # A string checked here rather than a `date` parameter: pydantic would take "0" for 1970-01-01.
    try:
        name = (date.fromisoformat(day) if day else datetime.now(UTC).date()).isoformat()
    except ValueError:
        raise InvalidRequest(f"day: no such day: {day}") from None
    before = _int(_decode(cursor), 0) if cursor else None
    found, last = deps.events.audit_page(name, limit, before)
    return m.AuditPage(
        day=name,
        entries=[m.AuditEntry.model_validate(e) for e in found],
        nextCursor=_encode(last) if last is not None else None,
    )


def models() -> list[Any]:
    """The models the routes validate and answer with (to build them ahead of need)."""
    return [*m.models(), GameEvent, Notice, PlayerState]


def prepare() -> None:
    """What powertools does on a route's first request: analyse its parameters and body for validation
    (building the OpenAPI document analyses every route, and keeps the analysis)."""
    app.get_openapi_schema(**_document())


def _document() -> dict[str, Any]:
    # The OpenAPI document's own models (about 100 ms of imports) are loaded by the route that needs them
    # (or before SnapStart's snapshot).
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {
        "title": "gamebackend admin API",
        "version": "1.0.0",
        "security_schemes": {"bearer": HTTPBearer(bearerFormat="JWT")},
        "security": [{"bearer": []}],
    }


@app.get("/admin/openapi.json", include_in_schema=False)
def openapi() -> Response[Any]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=app.get_openapi_json_schema(**_document()),
    )
