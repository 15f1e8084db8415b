"""Routes of the admin API (powertools' APIGatewayHttpResolver). Each route: validate, call a store, shape.

Auth: `Authorization: Bearer <JWT>` with the `admin` role, verified like player tokens. No or bad token
-> 401, a player's token -> 403. `/admin/health` and `/admin/openapi.json` are public. Every error is
`{"error": {"code", "message"}}` with the status of its GameError class (backend.errors).
"""

from __future__ import annotations

import base64
import json
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from backend import auth, bootstrap
from backend.admin import models as m
from backend.config import settings
from backend.errors import (
    BadRequest,
    GameError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from backend.game.periods import PERIODS, board_key
from backend.ids import ConnectionId, MatchId, PlayerId
from backend.protocol import Board, GameEvent, Mode, Notice, Period, PlayerState
from backend.store.leaderboards import Row, ranked

logger = Logger(child=True)
app = APIGatewayHttpResolver(enable_validation=True)
PUBLIC = {"/admin/health", "/admin/openapi.json"}
_DESCRIPTIONS = {
    400: "Bad request (an invalid cursor, a body that is not JSON)",
    401: "Missing or invalid bearer token",
    403: "The token is not an admin's",
    404: "No such resource",
    422: "A parameter or the body failed validation",
    503: "A backend dependency failed; retry",
}


def errors(*extra: int, ok: Any = None, public: bool = False) -> dict[int, Any]:
    """A route's responses for the OpenAPI document: its success model (as 200) and its errors, all with
    the same JSON body. (powertools documents the return annotation only when `responses` is not given.)"""
    codes = {422, 503, *extra} | (set() if public else {401, 403})
    body = {"application/json": {"model": m.ErrorBody}}
    documented = {code: {"description": _DESCRIPTIONS[code], "content": body} for code in sorted(codes)}
    return {**success(200, ok, "OK"), **documented} if ok is not None else documented


def success(status: int, model: Any, description: str) -> dict[int, Any]:
    return {status: {"description": description, "content": {"application/json": {"model": model}}}}


BoardPath = Annotated[Board, Path(description="global or a mode")]
MatchIdPath = Annotated[str, Path(pattern=r"^m-[0-9a-f]{32}$")]
PlayerIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
PeriodQuery = Annotated[Period, Query()]
LimitQuery = Annotated[int, Query(ge=1, le=100)]
# Opaque: what a previous page returned as nextCursor (base64url).
CursorQuery = Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+={0,2}$")]


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
    allowed = sorted({r.method for r in app._static_routes + app._dynamic_routes if r.rule.match(event.path)})
    if allowed:
        response = _error(
            MethodNotAllowed.status, MethodNotAllowed.code, f"{event.http_method} is not allowed here"
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return _error(404, "not_found", "no such route")


@app.exception_handler([json.JSONDecodeError, UnicodeDecodeError])
def _not_json(exc: ValueError) -> Response[Any]:
    return _error(400, BadRequest.code, "the body is not valid JSON")


@app.exception_handler(ValueError)
def _unparsable(exc: ValueError) -> Response[Any]:
    # powertools' request validation raises ValueError for a body it cannot parse (a multipart body
    # without a boundary, say); a ValueError from anywhere else is a bug and stays a 500.
    frames = traceback.extract_tb(exc.__traceback__)
    if any("event_handler/middlewares/openapi_validation" in f.filename for f in frames):
        return _error(400, BadRequest.code, f"the body cannot be parsed: {exc}")
    return _server_error(exc)


@app.exception_handler(RequestUnsupportedContentType)
def _wrong_content_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    return _error(UnsupportedMediaType.status, UnsupportedMediaType.code, "send the body as application/json")


def _server_error(exc: Exception) -> Response[Any]:
    logger.exception("admin request failed")
    if type(exc).__module__.startswith("botocore"):
        return _error(503, Unavailable.code, "a backend dependency failed; retry")
    return _error(500, "internal", "internal error")


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[Any]:
    return _server_error(exc)


def authenticate(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    if app.current_event.path in PUBLIC:
        return next_middleware(app)
    header = app.current_event.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _error(401, Unauthorized.code, "missing bearer token")
    try:
        claims = auth.verify_from_settings(token)
    except Unauthorized as exc:
        return _error(401, exc.code, exc.message)
    if claims.role != "admin":
        return _error(403, "forbidden", "an admin token is required")
    app.append_context(admin=claims.player_id)
    logger.append_keys(admin=claims.player_id)
    return next_middleware(app)


def require_json(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A body is JSON or nothing: anything else is refused before a parser sees it."""
    event = app.current_event
    if event.body:
        content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _error(
                UnsupportedMediaType.status, UnsupportedMediaType.code, "send the body as application/json"
            )
    return next_middleware(app)


app.use([authenticate, require_json])


def _admin() -> str:
    return str(app.context.get("admin", "unknown"))


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def _decode(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise BadRequest("invalid cursor") from exc


# --- leaderboards ----------------------------------------------------------------------------------


def _season(board: str, season: int | None) -> int:
    current = bootstrap.leaderboards().seasons([board], max_age=0)[board]
    if season is None:
        return current
    if season > current:
        raise NotFound(f"board {board} has no season {season} yet (current: {current})")
    return season


@app.get("/admin/leaderboards/<board>", responses=errors(400, 404, ok=m.LeaderboardPage))
def leaderboard_page(
    board: BoardPath,
    period: PeriodQuery = "alltime",
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
    season: Annotated[int | None, Query(ge=0)] = None,
) -> m.LeaderboardPage:
    season_no = _season(board, season)
    key = board_key(board, period, datetime.now(UTC), season_no)
    after, previous, position = None, None, 0
    if cursor:
        raw = _decode(cursor)
        try:
            after = Row(str(raw[1]), int(raw[0]))
            previous, position = (int(raw[0]), int(raw[2])), int(raw[3])
        except (IndexError, TypeError, ValueError) as exc:
            raise BadRequest("invalid cursor") from exc
    rows = bootstrap.leaderboards().page(key, limit + 1, after)
    page = ranked(rows[:limit], position, previous)
    entries = [m.Entry(rank=rank, playerId=r.player_id, score=r.score) for rank, r in page]
    next_cursor = None
    if len(rows) > limit:
        last_rank, last = page[-1]
        next_cursor = _encode([last.score, last.player_id, last_rank, position + limit])
    return m.LeaderboardPage(
        board=board, period=period, season=season_no, entries=entries, nextCursor=next_cursor
    )


@app.get("/admin/leaderboards/<board>/players/<playerId>", responses=errors(404, ok=m.PlayerStanding))
def player_standing(
    board: BoardPath, playerId: PlayerIdPath, period: PeriodQuery = "alltime"
) -> m.PlayerStanding:
    season_no = _season(board, None)
    key = board_key(board, period, datetime.now(UTC), season_no)
    store = bootstrap.leaderboards()
    found = store.rank_of(key, playerId)
    if found is None:
        raise NotFound(f"{playerId} is not on {board}/{period}")
    rank, score = found
    neighbours = [
        m.Entry(rank=n, playerId=r.player_id, score=r.score)
        for n, r in store.around(key, playerId, score, rank)
    ]
    return m.PlayerStanding(
        board=board,
        period=period,
        season=season_no,
        playerId=playerId,
        rank=rank,
        score=score,
        neighbours=neighbours,
    )


@app.delete("/admin/leaderboards/<board>/players/<playerId>", responses=errors(404, ok=m.Removed))
def remove_player(board: BoardPath, playerId: PlayerIdPath) -> m.Removed:
    season_no = _season(board, None)
    now = datetime.now(UTC)
    store = bootstrap.leaderboards()
    removed = [k for k in (board_key(board, p, now, season_no) for p in PERIODS) if store.remove(k, playerId)]
    if not removed:
        raise NotFound(f"{playerId} is not on {board}")
    bootstrap.events().audit(
        _admin(), "leaderboard.remove", {"board": board, "playerId": playerId, "keys": removed}
    )
    logger.warning("player removed from leaderboard", extra={"board": board, "playerId": playerId})
    return m.Removed(board=board, playerId=playerId, removed=removed)


@app.post(
    "/admin/leaderboards/<board>/reset", responses={**success(201, m.Season, "The new season"), **errors()}
)
def reset_board(board: BoardPath) -> Response[Any]:
    season_no = bootstrap.leaderboards().start_season(board)
    bootstrap.events().audit(_admin(), "leaderboard.reset", {"board": board, "season": season_no})
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
        points=e.points,
        x=e.x,
        y=e.y,
    )


@app.get("/admin/matches", responses=errors(400, ok=m.MatchPage))
def list_matches(
    status: Annotated[m.MatchStatusName, Query()] = "running",
    mode: Annotated[Mode | None, Query()] = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> m.MatchPage:
    start = _decode(cursor) if cursor else None
    if start is not None and not isinstance(start, dict):
        raise BadRequest("invalid cursor")
    try:
        found, last = bootstrap.matches().by_status(status, mode=mode, limit=limit, cursor=start)
    except Exception as exc:
        if start is not None and "ValidationException" in type(exc).__name__ + str(exc):
            raise BadRequest("invalid cursor") from exc
        raise
    return m.MatchPage(
        matches=[m.MatchSummary.model_validate(s) for s in found], nextCursor=_encode(last) if last else None
    )


@app.get("/admin/matches/<matchId>", responses=errors(404, ok=m.MatchDetail))
def get_match(matchId: MatchIdPath) -> m.MatchDetail:
    store = bootstrap.matches()
    stored = store.load(matchId)
    roster = store.roster(matchId)
    match = stored.match
    return m.MatchDetail(
        matchId=match.match_id,
        mode=match.mode,  # type: ignore[arg-type]  # one of MODES, checked when the match was created
        status=match.status,
        version=match.version,
        players={p: PlayerState(score=s.score, x=s.x, y=s.y, left=s.left) for p, s in match.players.items()},
        roster=list(roster.players),
        winner=match.winner,
        lastEvents=[_logged(v, e) for v, e in bootstrap.events().recent(matchId, 20)],
    )


@app.get("/admin/matches/<matchId>/events", responses=errors(400, 404, ok=m.EventPage))
def match_events(matchId: MatchIdPath, limit: LimitQuery = 50, cursor: CursorQuery = None) -> m.EventPage:
    after = 0
    if cursor:
        raw = _decode(cursor)
        if not isinstance(raw, int) or raw < 0:
            raise BadRequest("invalid cursor")
        after = raw
    bootstrap.matches().roster(matchId)  # 404 for an unknown match
    found = bootstrap.events().read(matchId, after_version=after, limit=limit + 1)
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
def end_match(matchId: MatchIdPath) -> Response[Any]:
    """Finishes the match through the stream, like a player action: ordered, applied exactly once."""
    bootstrap.matches().roster(matchId)
    event = GameEvent(
        eventId=str(uuid.uuid4()),
        matchId=matchId,
        playerId=_admin(),
        receivedAt=int(time.time() * 1000),
        type="end",
        actionId=f"admin-end-{uuid.uuid4().hex[:8]}",
    )
    bootstrap.stream().publish(event)
    bootstrap.events().audit(_admin(), "match.end", {"matchId": matchId, "eventId": event.eventId})
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=m.Accepted(matchId=matchId, eventId=event.eventId).model_dump_json(),
    )


# --- connections ---------------------------------------------------------------------------------


@app.get("/admin/connections", responses=errors(400, ok=m.ConnectionPage))
def list_connections(
    playerId: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = None,
    matchId: Annotated[str | None, Query(pattern=r"^m-[0-9a-f]{32}$")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> m.ConnectionPage:
    store = bootstrap.connections()
    next_cursor = None
    if playerId is not None:
        found = store.of_player(PlayerId(playerId))
        if matchId is not None:
            found = [c for c in found if c.match_id == matchId]
    elif matchId is not None:
        found = store.in_match(MatchId(matchId))
    else:
        start = _decode(cursor) if cursor else None
        if start is not None and not isinstance(start, dict):
            raise BadRequest("invalid cursor")
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
def kick(connectionId: Annotated[str, Path(pattern=r"^[A-Za-z0-9_=+/-]{1,128}$")]) -> Response[Any]:
    from backend.aws import client

    mgmt = client("apigatewaymanagementapi", settings().ws_api_endpoint)
    try:
        mgmt.delete_connection(ConnectionId=connectionId)
    except mgmt.exceptions.GoneException:
        bootstrap.connections().delete(ConnectionId(connectionId))
        raise NotFound("no such connection") from None
    bootstrap.events().audit(_admin(), "connection.kick", {"connectionId": connectionId})
    return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")


@app.post("/admin/broadcast", responses=errors(400, 404, ok=m.BroadcastResult))
def broadcast(body: m.Broadcast) -> m.BroadcastResult:
    from streams.push import Pusher

    store = bootstrap.connections()
    if body.matchId is not None:
        bootstrap.matches().roster(body.matchId)
        targets = [c.connection_id for c in store.in_match(MatchId(body.matchId))]
    else:
        targets, cursor = [], None
        while True:
            page, cursor = store.all(500, cursor)
            targets += [c.connection_id for c in page]
            if not cursor:
                break
    frame = Notice(message=body.message).model_dump_json()
    report = Pusher(settings().ws_api_endpoint).send([(cid, frame) for cid in targets])
    for gone in report.gone:
        store.delete(ConnectionId(gone))
    bootstrap.events().audit(_admin(), "broadcast", {"matchId": body.matchId, "sent": report.sent})
    return m.BroadcastResult(sent=report.sent, gone=len(report.gone), failed=len(report.failed))


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
def health() -> Response[Any]:
    from backend.aws import client

    s = settings()
    checks: dict[str, str] = {}
    ddb = client("dynamodb")
    for name in (s.connections_table, s.matches_table, s.leaderboards_table, s.events_table):
        try:
            checks[name] = ddb.describe_table(TableName=name)["Table"]["TableStatus"].lower()
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    try:
        summary = client("kinesis").describe_stream_summary(StreamName=s.stream_name)
        checks[s.stream_name] = summary["StreamDescriptionSummary"]["StreamStatus"].lower()
    except Exception as exc:
        checks[s.stream_name] = f"error: {type(exc).__name__}"
    ok = all(v in ("active", "updating") for v in checks.values())
    body = m.Health(status="ok" if ok else "degraded", checks=checks)
    return Response(
        status_code=200 if ok else 503,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(),
    )


@app.get("/admin/stats", responses=errors(ok=m.Stats))
def stats() -> m.Stats:
    matches = bootstrap.matches()
    stream = bootstrap.stream_stats()
    return m.Stats(
        connections=bootstrap.connections().count(),
        waitingMatches=matches.count_by_status("waiting"),
        runningMatches=matches.count_by_status("running"),
        actionsLastMinute=stream.records_last_minute(),
        streamLagMs=stream.iterator_age_ms(),
    )


def models() -> list[Any]:
    """The models the routes validate and answer with (to build them ahead of need)."""
    return [*m.models(), GameEvent, Notice, PlayerState]


def prepare() -> None:
    """What powertools does on a route's first request: analyse its parameters and body for validation."""
    for route in app._static_routes + app._dynamic_routes:
        route.dependant  # noqa: B018  (a property, computed on first access)
        route.body_field  # noqa: B018


@app.get("/admin/openapi.json", include_in_schema=False)
def openapi() -> Response[Any]:
    # The OpenAPI document's own models (about 100 ms of imports) are loaded by the route that needs them.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=app.get_openapi_json_schema(
            title="gamebackend admin API",
            version="1.0.0",
            security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
            security=[{"bearer": []}],
        ),
    )
