"""The read API's application: routes under /v1, keys and rate limits, health and metrics.

`create_app(settings)` builds everything from the settings (one Redis client, the
scoring parameters to write explanations with); `creator-scores serve` runs it with
uvicorn. Every /v1 route takes a partner key (`streams.api.auth`); errors have one JSON
shape (`streams.api.errors`). Routes return orjson bytes as they are: the response
models (`streams.api.models`) document them, and the tests hold the answers to them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final

import orjson
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response, StreamingResponse

from scoring.names import SCORE_NAMES
from scoring.params import Params
from streams.api import errors, models
from streams.api.auth import ApiKey, Keyring
from streams.api.errors import ApiError
from streams.api.feed import KEEPALIVE, RESET, Change, ChangeHub, changes, for_board, for_creator
from streams.api.feed import stream_id as parse_stream_id
from streams.api.lean import LeanRoutes
from streams.api.metrics import FEED_EVENTS, FEEDS_OPEN, RATE_LIMITED, REGISTRY, LatencyMiddleware
from streams.api.reads import Cursor, Reader
from streams.api.search import Query as SearchQuery
from streams.api.search import Searcher
from streams.api.widget import widget_routes
from streams.keys import BOARD_SCORES, GLOBAL_REGION, BoardRef, Keys
from streams.readers import ReaderError, board_ref, valid_label, valid_region
from streams.settings import Settings, load_scoring_params

API_VERSION: Final = "1"
#: Errors every /v1 route may answer, for the OpenAPI document.
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"model": models.Error, "description": "A bad parameter (the error says which)."},
    401: {"model": models.Error, "description": "No API key, or not a valid one."},
    403: {"model": models.Error, "description": "A region outside the key's regions."},
    429: {"model": models.Error, "description": "Past the key's rate: see Retry-After."},
}
_RATE_HEADERS: Final = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": models.Error, "description": "No such creator in Redis."}
}
_SSE: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "Server-Sent Events: `change` events (id: the change stream id; data: "
        "JSON with `id`, `change` and, on a board feed, `board` with the creator's score and "
        "rank on it, null if off it), `reset` when records were missed (read again, then "
        "reconnect), and keep-alive comments.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


class Api:
    """What the routes share: the Redis client and the objects that query it."""

    def __init__(self, settings: Settings, params: Params, client: Redis) -> None:
        keys = Keys(settings.redis_prefix)
        self.settings = settings
        self.params = params
        self.redis = client
        self.keys = keys
        self.keyring = Keyring(client, keys, settings.api_rate_window_s)
        self.reader = Reader(client, keys, params)
        self.searcher = Searcher(client, keys, settings.api_search_ttl_ms)
        self.hub = ChangeHub(client, keys)


def create_app(
    settings: Settings, *, params: Params | None = None, client: Redis | None = None
) -> FastAPI:
    """The API over the Redis of `settings` (or `client`, which the caller then closes)."""
    owned = client is None
    redis = client or Redis.from_url(
        settings.redis_url, socket_timeout=5.0, socket_connect_timeout=3.0, health_check_interval=30
    )
    api = Api(settings, params or load_scoring_params(settings), redis)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await api.hub.close()
            if owned:
                await redis.aclose()

    app = FastAPI(
        title="creator-scores read API",
        version=API_VERSION,
        summary="Creator scores, leaderboards, partner search and live changes, from Redis.",
        description=(
            "Every /v1 route needs a partner API key (`creator-scores keys create`) in the "
            "`X-API-Key` header or as `Authorization: Bearer <key>`. Errors are JSON: "
            '`{"error": {"status", "code", "message", "param", "valid"}}`. '
            "See docs/api.md."
        ),
        lifespan=lifespan,
    )
    app.state.api = api
    # Innermost first: the lean routes, then CORS around them (its headers on every
    # answer, its preflights answered), then the latency histogram around everything.
    app.add_middleware(LeanRoutes)  # inside LatencyMiddleware: timed too
    origins = [o.strip() for o in settings.api_cors_origins.split(",") if o.strip()]
    if origins:
        # Partner pages that embed the widget read the API from the browser: reads only,
        # with the key in a header (so a preflight), and the rate-limit headers visible.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET"],
            allow_headers=["X-API-Key", "Authorization", "Last-Event-ID"],
            expose_headers=["Retry-After", *_RATE_HEADERS],
            max_age=600,
        )
    app.add_middleware(LatencyMiddleware)
    app.add_exception_handler(ApiError, errors.on_api_error)
    app.add_exception_handler(ReaderError, errors.on_reader_error)
    app.add_exception_handler(RequestValidationError, errors.on_validation_error)
    app.add_exception_handler(StarletteHTTPException, errors.on_http_error)
    app.add_exception_handler(RedisError, _on_redis_error)
    app.add_exception_handler(ConnectionError, _on_redis_error)
    _health_routes(app, api)
    _v1_routes(app, api)
    widget_routes(app, api.params)
    return app


async def _on_redis_error(request: Request, exc: Exception) -> Response:
    return ApiError(503, "redis_unavailable", f"Redis did not answer: {exc}").response()


# --------------------------------------------------------------------------- keys


_HEADER_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="A partner key.")
_BEARER = HTTPBearer(auto_error=False, description="The same key as a bearer token.")
_QUERY_KEY = APIKeyQuery(
    name="api_key",
    auto_error=False,
    description="The key as a query parameter, on live feeds only: a browser's EventSource "
    "cannot send headers.",
)


async def _partner_of(request: Request, token: str | None) -> ApiKey:
    api: Api = request.app.state.api
    if not token:
        raise ApiError(
            401, "unauthorized",
            "send an API key in the X-API-Key header (or as Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    checked = await api.keyring.check(token)
    key = checked.key
    if key is None:
        raise ApiError(
            401, "unauthorized", "this API key is not valid: revoked, mistyped or never issued",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    reset_s = max(1, math.ceil(checked.window_left_ms / 1000))
    headers = {
        "X-RateLimit-Limit": str(key.rate),
        "X-RateLimit-Remaining": str(max(0, key.rate - checked.count)),
        "X-RateLimit-Reset": str(reset_s),
    }
    if checked.count > key.rate:
        RATE_LIMITED.labels(key.partner).inc()
        window = api.settings.api_rate_window_s
        raise ApiError(
            429, "rate_limited",
            f"this key may make {key.rate} requests per {window} s; retry in {reset_s} s",
            headers={**headers, "Retry-After": str(reset_s)},
        )  # fmt: skip
    request.state.rate_headers = headers
    return key


async def partner(
    request: Request,
    header: Annotated[str | None, Security(_HEADER_KEY)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
) -> ApiKey:
    """The key of a /v1 request, counted against its rate (401, 429 otherwise)."""
    return await _partner_of(request, header or (bearer.credentials if bearer else None))


async def feed_partner(
    request: Request,
    header: Annotated[str | None, Security(_HEADER_KEY)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
    query: Annotated[str | None, Security(_QUERY_KEY)] = None,
) -> ApiKey:
    """As `partner`, also taking the key from the query (browsers' EventSource)."""
    token = header or (bearer.credentials if bearer else None) or query
    return await _partner_of(request, token)


def allow(key: ApiKey, region: str | None) -> None:
    """403 unless the key may read `region` (ALL: every region)."""
    if region is not None and key.may_read(region):
        return
    assert key.regions is not None  # a key for every region reads every one
    regions = ", ".join(sorted(key.regions))
    if region == GLOBAL_REGION:
        message = f"the global (ALL) boards need a key for every region; this key reads {regions}"
    else:
        message = f"this key reads {regions} only, not {region or 'creators without a region'}"
    raise ApiError(403, "forbidden_region", message, param="region", valid=sorted(key.regions))


async def known_params(request: Request) -> None:
    """400 for a query parameter the route does not take (a typo would be ignored)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    names = _query_names(route)
    unknown = sorted(set(request.query_params) - names)
    if unknown:
        raise ApiError(
            400, "bad_parameter",
            f"unknown parameter {unknown[0]!r}; this route takes: {', '.join(sorted(names))}",
            param=unknown[0], valid=sorted(names),
        )  # fmt: skip


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _query_names(route: APIRoute) -> frozenset[str]:
    names = _QUERY_NAMES.get(id(route))
    if names is None:
        found: set[str] = set()
        stack = [route.dependant]
        while stack:
            dependant = stack.pop()
            found.update(param.alias for param in dependant.query_params)
            if isinstance(dependant.call, APIKeyQuery):  # reads the query itself
                found.add(dependant.call.model.name)
            stack.extend(dependant.dependencies)
        names = _QUERY_NAMES[id(route)] = frozenset(found)
    return names


def reply(request: Request, payload: object, status: int = 200) -> Response:
    headers = getattr(request.state, "rate_headers", None)
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


# --------------------------------------------------------------------------- routes

Partner = Annotated[ApiKey, Depends(partner)]
FeedPartner = Annotated[ApiKey, Depends(feed_partner)]
ScorePath = Annotated[str, Path(description=f"One of {', '.join(BOARD_SCORES)}.")]
Region = Annotated[
    str, Query(description="A region code in any case (UK is GB), or ALL for the world.")
]
Theme = Annotated[str | None, Query(description="A product theme (overall, influence only).")]
ContentType = Annotated[
    str | None, Query(description="A content type, e.g. video (overall, influence only).")
]
CreatorId = Annotated[str, Path(min_length=1, max_length=256)]
LastEventId = Annotated[
    str | None, Header(alias="Last-Event-ID", description="Resume after this event.")
]


def _health_routes(app: FastAPI, api: Api) -> None:
    @app.get("/healthz", response_model=models.Live, tags=["health"])
    async def healthz() -> Response:
        """Liveness: answers while the process serves requests."""
        return Response(b'{"live":true}', media_type="application/json")

    @app.get(
        "/readyz",
        response_model=models.Ready,
        responses={503: {"model": models.Ready, "description": "Redis does not answer."}},
        tags=["health"],
    )
    async def readyz() -> Response:
        """Readiness: Redis answers a PING within a second."""
        try:
            async with asyncio.timeout(1.0):
                await api.redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            body = {"ready": False, "redis": f"{type(exc).__name__}: {exc}"}
            return Response(orjson.dumps(body), 503, media_type="application/json")
        return Response(b'{"ready":true,"redis":"ok"}', media_type="application/json")

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this API process (`creator_scores_api_*`)."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _v1_routes(app: FastAPI, api: Api) -> None:
    v1 = {"dependencies": [Depends(known_params)], "responses": _ERRORS, "tags": ["v1"]}

    @app.get("/v1/leaderboards/{score}", response_model=models.Leaderboard, **v1)  # type: ignore[arg-type]
    async def leaderboard(
        request: Request,
        key: Partner,
        score: ScorePath,
        region: Region = GLOBAL_REGION,
        theme: Theme = None,
        content_type: ContentType = None,
        n: Annotated[int, Query(ge=1, le=1000, description="Entries per page.")] = 10,
        offset: Annotated[int, Query(ge=0, le=1_000_000, description="Entries to skip.")] = 0,
        cursor: Annotated[str | None, Query(description="`next_cursor` of a page.")] = None,
    ) -> Response:
        """A page of a leaderboard, best first: by score, in a region or the world, for a
        product theme or a content type (overall and influence only)."""
        board = board_ref(score=score, region=region, theme=theme, content_type=content_type,
                          taxonomy=api.params)  # fmt: skip
        allow(key, board.region)
        if cursor is not None and offset:
            raise ApiError(400, "bad_parameter", "give offset or cursor, not both", param="cursor")
        after = Cursor.decode(cursor) if cursor is not None else None
        page = await api.reader.board_page(board, n, offset, after)
        if page["board"]["size"] == 0:
            await _region_has_creators(api, board.region)
        return reply(request, page)

    @app.get("/v1/creators/{creator_id}", response_model=models.Creator,
             responses={**_ERRORS, **_NOT_FOUND}, **_but(v1, "responses"))  # fmt: skip
    async def creator(request: Request, key: Partner, creator_id: CreatorId) -> Response:
        """A creator: every score with the sentences that explain it and its percentile rank
        in its region, the world, each theme and content type; and how fresh the card is."""
        card = await api.reader.creator(creator_id, global_ranks=key.regions is None)
        if card is None:
            raise _unknown(creator_id)
        allow(key, card["region"])
        return reply(request, card)

    @app.get("/v1/creators/{creator_id}/changes", response_model=models.Changes,
             responses={**_ERRORS, **_NOT_FOUND}, **_but(v1, "responses"))  # fmt: skip
    async def creator_changes(
        request: Request,
        key: Partner,
        creator_id: CreatorId,
        n: Annotated[int, Query(ge=1, le=100, description="Most records.")] = 10,
    ) -> Response:
        """A creator's recent score changes with their reasons, newest first (as many as the
        worker keeps per creator: `CREATOR_SCORES_REDIS_CHANGES_PER_CREATOR`)."""
        await _readable_creator(api, key, creator_id)
        found = await api.reader.recent_changes(creator_id, n)
        return reply(request, {"creator_id": creator_id, "changes": found})

    @app.get("/v1/search", response_model=models.Search, **v1)  # type: ignore[arg-type]
    async def search(
        request: Request,
        key: Partner,
        region: Region = GLOBAL_REGION,
        theme: Theme = None,
        content_type: ContentType = None,
        min_overall: _Min = None,
        min_cooperation: _Min = None,
        min_diligence: _Min = None,
        min_influence: _Min = None,
        min_reception: _Min = None,
        min_sales: _Min = None,
        min_consistency: _Min = None,
        min_collaboration: _Min = None,
        exclude_provisional: Annotated[
            bool, Query(description="Leave out creators with little data.")
        ] = False,
        sort: Annotated[str, Query(description="The score to sort by, best first.")] = "overall",
        n: Annotated[int, Query(ge=1, le=100, description="Results per page.")] = 20,
        offset: Annotated[int, Query(ge=0, le=100_000, description="Results to skip.")] = 0,
    ) -> Response:
        """Creators of a region (theme, content type) at or above minimums on any scores,
        sorted by any score. `overall` and `influence` read the theme's board when a theme
        is given, else the content type's ("influence in beauty at least 70"); the other
        scores read the region's. Each result has its scores and percentile ranks."""
        given = {"overall": min_overall, "cooperation": min_cooperation,
                 "diligence": min_diligence, "influence": min_influence,
                 "reception": min_reception, "sales": min_sales,
                 "consistency": min_consistency, "collaboration": min_collaboration}  # fmt: skip
        if sort not in SCORE_NAMES:
            choices = ", ".join(SCORE_NAMES)
            raise ApiError(400, "bad_parameter", f"cannot sort by {sort!r}; choose one of "
                           f"{choices}", param="sort", valid=SCORE_NAMES)  # fmt: skip
        query = SearchQuery(
            region=valid_region(region),
            theme=valid_label("theme", theme, api.params) if theme is not None else None,
            content_type=(
                valid_label("content_type", content_type, api.params)
                if content_type is not None
                else None
            ),
            minimums={name: value for name, value in given.items() if value is not None},
            exclude_provisional=exclude_provisional,
            sort=sort,
        )
        allow(key, query.region)
        found = await api.searcher.search(query, n, offset)
        if found["matches"] == 0:
            await _region_has_creators(api, query.region)
        return reply(request, found)

    @app.get("/v1/creators/{creator_id}/feed", response_class=StreamingResponse,
             responses={**_ERRORS, **_NOT_FOUND, **_SSE}, **_but(v1, "responses"))  # fmt: skip
    async def creator_feed(
        key: FeedPartner,
        creator_id: CreatorId,
        last_event_id: LastEventId = None,
        since: Annotated[str | None, Query(description="As Last-Event-ID.")] = None,
    ) -> StreamingResponse:
        """Live: the creator's score changes as they are written."""
        await _readable_creator(api, key, creator_id)
        after = _event_id(last_event_id or since)
        return _sse(api, for_creator(creator_id), after, None)

    @app.get("/v1/leaderboards/{score}/feed", response_class=StreamingResponse,
             responses={**_ERRORS, **_SSE}, **_but(v1, "responses"))  # fmt: skip
    async def board_feed(
        key: FeedPartner,
        score: ScorePath,
        region: Region = GLOBAL_REGION,
        theme: Theme = None,
        content_type: ContentType = None,
        last_event_id: LastEventId = None,
        since: Annotated[str | None, Query(description="As Last-Event-ID.")] = None,
    ) -> StreamingResponse:
        """Live: score changes of the board's creators, each with the creator's score and
        rank on the board as it is then."""
        board = board_ref(score=score, region=region, theme=theme, content_type=content_type,
                          taxonomy=api.params)  # fmt: skip
        allow(key, board.region)
        after = _event_id(last_event_id or since)
        return _sse(api, for_board(board), after, board)


_Min = Annotated[float | None, Query(ge=0, le=100, description="At least this score.")]


def _but(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in names}


def _unknown(creator_id: str) -> ApiError:
    return ApiError(404, "unknown_creator", f"no scores for creator {creator_id!r}")


async def _readable_creator(api: Api, key: ApiKey, creator_id: str) -> None:
    exists, region = await api.reader.region_of(creator_id)
    if not exists:
        raise _unknown(creator_id)
    allow(key, region)


async def _region_has_creators(api: Api, region: str) -> None:
    """400 for a region no board has (a typo, or nobody there yet), naming those that do."""
    if region == GLOBAL_REGION:
        return
    regions = await api.reader.known_regions()
    if region not in regions:
        raise ApiError(
            400, "bad_parameter",
            f"no creators in region {region!r}; regions with creators: {', '.join(regions)}",
            param="region", valid=[GLOBAL_REGION, *regions],
        )  # fmt: skip


def _event_id(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    try:
        parse_stream_id(text.strip())
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{text!r} is not an event id of this feed",
                       param="Last-Event-ID") from None  # fmt: skip
    return text.strip()


def _sse(
    api: Api, wants: Callable[[Change], bool], after: str | None, board: BoardRef | None
) -> StreamingResponse:
    board_key = board.key(api.keys) if board is not None else None

    async def events() -> AsyncIterator[bytes]:
        FEEDS_OPEN.inc()
        try:
            yield b"retry: 2000\n\n"
            async for change in changes(api.hub, wants, after):
                if change is KEEPALIVE:
                    yield b": keep-alive\n\n"
                    continue
                if change is RESET or not isinstance(change, Change):
                    yield b'event: reset\ndata: {"reason":"records were missed"}\n\n'
                    return
                body: dict[str, Any] = {"id": change.id, "change": change.record}
                if board_key is not None:
                    body["board"] = await _place(api.redis, board_key, change.creator_id)
                FEED_EVENTS.inc()
                yield b"id: %s\nevent: change\ndata: %s\n\n" % (
                    change.id.encode(),
                    orjson.dumps(body),
                )
        finally:
            FEEDS_OPEN.dec()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _place(client: Redis, board_key: str, creator_id: str) -> dict[str, object]:
    async with client.pipeline(transaction=False) as pipe:
        pipe.zscore(board_key, creator_id)
        pipe.zrevrank(board_key, creator_id)
        score, rank = await pipe.execute()
    return {
        "score": float(score) if score is not None else None,
        "rank": int(rank) + 1 if rank is not None else None,
    }


def from_environment() -> FastAPI:
    """The app from the environment's settings (`serve --workers N`: one per process)."""
    from streams.settings import load_settings

    return create_app(load_settings())
