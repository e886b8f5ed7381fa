"""One JSON shape for every error the read API returns, so partners handle them in one place.

`{"error": {"status": 400, "code": "bad_parameter", "message": "...", "param": "score",
"valid": [...]}}`: `code` is stable, `message` says what to do, `param` and `valid` are
there when a parameter is at fault and has a list of values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from streams.readers import ReaderError


class ApiError(Exception):
    """An answer other than success, with its HTTP status and stable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        valid: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.valid = tuple(valid)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"status": self.status, "code": self.code}
        error["message"] = self.message
        if self.param is not None:
            error["param"] = self.param
        if self.valid:
            error["valid"] = list(self.valid)
        return {"error": error}

    def response(self) -> Response:
        return Response(
            orjson.dumps(self.body()),
            status_code=self.status,
            media_type="application/json",
            headers=self.headers,
        )


def bad_parameter(exc: ReaderError) -> ApiError:
    return ApiError(400, "bad_parameter", str(exc), param=exc.param, valid=exc.valid)


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def on_reader_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ReaderError)
    return bad_parameter(exc).response()


async def on_validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 for a malformed parameter, as the 400 every other bad parameter gets."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
    param = location[-1] if location else None
    problem = str(first.get("msg", "invalid value"))
    message = f"{param}: {problem}" if param else problem
    return ApiError(400, "bad_parameter", message, param=param).response()


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, method not allowed) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    return ApiError(exc.status_code, code, str(exc.detail), headers=exc.headers).response()
