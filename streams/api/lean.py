"""The read API's plain GET routes without FastAPI's per-request machinery, same answers.

For every request FastAPI walks the route's dependency tree and re-inspects each
parameter's annotation before validating it (in this FastAPI, a third of a top-10 read's
CPU, more than its two Redis round trips). `LeanRoutes`, a middleware, answers the routes
whose shape it fully understands by doing the same steps once planned: it finds the route
as Starlette's router does (the first full match), validates the path and query
parameters with the route's own pydantic fields, then runs the route's dependencies in
FastAPI's order (the key check, the unknown-parameter check) and the endpoint, and turns
an exception into a response with the app's own exception handlers.

Anything it does not fully understand goes to FastAPI untouched, before any side effect:
a method other than GET, a route with header, cookie or body parameters, a dependency
that is not a coroutine or takes parameters of its own, dependency overrides, and any
request whose parameters do not validate (so FastAPI, which checks the key first, writes
the error exactly as always). Which routes are planned: `plan_of`.
"""

from __future__ import annotations

import inspect
import types
import typing
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

#: Parameter types validated here (anything else: the route is FastAPI's).
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Plan:
    """How to answer one route: its fields and its dependencies, checked once."""

    route: APIRoute
    #: (field, alias) of path and query parameters.
    path: tuple[Any, ...]
    query: tuple[Any, ...]


def plan_of(route: object) -> Plan | None:
    """The plan of a route LeanRoutes can answer exactly as FastAPI would, else None."""
    if not isinstance(route, APIRoute) or route.methods != {"GET"}:
        return None
    dependant = route.dependant
    if not _plain(dependant, top=True) or not _returns_response(route.endpoint):
        return None
    fields = (*dependant.path_params, *dependant.query_params)
    if not all(_scalar(field) for field in fields):
        return None
    return Plan(route, tuple(dependant.path_params), tuple(dependant.query_params))


def _plain(dependant: Dependant, *, top: bool = False) -> bool:
    """No header, cookie or body parameters, no special parameters but the request, every
    dependency a coroutine with no parameters of its own (the endpoint may have path and
    query parameters)."""
    if dependant.header_params or dependant.cookie_params or dependant.body_params:
        return False
    if not top and (dependant.path_params or dependant.query_params):
        return False
    special = (
        dependant.websocket_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    if any(name is not None for name in special):
        return False
    if not top and not _is_coroutine(dependant.call):
        return False
    return all(_plain(sub) for sub in dependant.dependencies)


def _is_coroutine(call: object) -> bool:
    """A coroutine function, or an instance whose __call__ is one (a security scheme)."""
    if inspect.isfunction(call) or inspect.ismethod(call):
        return inspect.iscoroutinefunction(call)
    return callable(call) and inspect.iscoroutinefunction(type(call).__call__)


def _returns_response(endpoint: object) -> bool:
    try:
        hints = typing.get_type_hints(endpoint)
    except (NameError, TypeError):
        return False
    answer = hints.get("return")
    return inspect.isclass(answer) and issubclass(answer, Response)


def _scalar(field: Any) -> bool:
    info = field.field_info
    if getattr(info, "validation_alias", None) is not None:
        return False
    annotation = info.annotation
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = typing.get_args(annotation) if union else (annotation,)
    return all(option in _SCALARS or option is type(None) for option in options)


class _NotPlain(Exception):
    """This request goes to FastAPI (raised before any side effect)."""


class LeanRoutes:
    """Middleware: answers planned routes itself (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._plans: dict[int, Plan | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        fastapi: FastAPI = scope["app"]
        found = self._route(fastapi, scope)
        if found is None or fastapi.dependency_overrides:
            await self.app(scope, receive, send)
            return
        plan, child = found
        scope.update(child)
        scope["route"] = plan.route
        request = Request(scope, receive)
        try:
            values = _parameters(plan, request)
        except _NotPlain:
            await self.app(scope, receive, send)
            return
        try:
            response = await _answer(plan, request, values)
        except Exception as exc:
            response = await _handled(fastapi, request, exc)
        await response(scope, receive, send)

    def _route(self, app: FastAPI, scope: Scope) -> tuple[Plan, Scope] | None:
        """The route Starlette's router would take, if it is planned."""
        for route in app.router.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                key = id(route)
                if key not in self._plans:
                    self._plans[key] = plan_of(route)
                plan = self._plans[key]
                return (plan, child) if plan is not None else None
        return None


def _parameters(plan: Plan, request: Request) -> dict[str, Any]:
    """The endpoint's path and query values, validated as FastAPI validates them."""
    values: dict[str, Any] = {}
    for fields, received, where in ((plan.path, request.path_params, "path"),
                                    (plan.query, request.query_params, "query")):  # fmt: skip
        for field in fields:
            raw = received.get(field.alias)
            if raw is None:
                if field.field_info.is_required():
                    raise _NotPlain
                value = deepcopy(field.default)
                if field.field_info.validate_default:
                    value, errors = field.validate(value, values, loc=(where, field.alias))
                    if errors:
                        raise _NotPlain
            else:
                value, errors = field.validate(raw, values, loc=(where, field.alias))
                if errors:
                    raise _NotPlain
            values[field.name] = value
    return values


async def _answer(plan: Plan, request: Request, values: dict[str, Any]) -> Response:
    dependant = plan.route.dependant
    cache: dict[int, Any] = {}
    solved = await _solve(dependant, request, cache)
    endpoint: Any = dependant.call
    answer = await endpoint(**solved, **values)
    assert isinstance(answer, Response)
    return answer


async def _solve(dependant: Dependant, request: Request, cache: dict[int, Any]) -> dict[str, Any]:
    """The values of a dependant's dependencies (and its request), in FastAPI's order."""
    values: dict[str, Any] = {}
    for sub in dependant.dependencies:
        key = id(sub.call)
        if sub.use_cache and key in cache:
            solved = cache[key]
        else:
            call: Any = sub.call
            solved = await call(**(await _solve(sub, request, cache)))
            cache.setdefault(key, solved)
        if sub.name is not None:
            values[sub.name] = solved
    for name in (dependant.request_param_name, dependant.http_connection_param_name):
        if name is not None:
            values[name] = request
    return values


async def _handled(app: FastAPI, request: Request, exc: Exception) -> Response:
    """The response the app's exception handlers give (as Starlette's ExceptionMiddleware
    looks them up); an exception without one goes on up, to the server error handler."""
    handlers = app.exception_handlers
    handler = None
    if isinstance(exc, HTTPException):
        handler = handlers.get(exc.status_code)
    if handler is None:
        handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    if handler is None or handler is handlers.get(Exception) or handler is handlers.get(500):
        raise exc
    if inspect.iscoroutinefunction(handler):
        response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    assert isinstance(response, Response)
    return response
