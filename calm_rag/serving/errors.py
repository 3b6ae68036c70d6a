"""Every error the server returns, in the OpenAI error shape, so OpenAI clients raise their usual exceptions.

`{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}` with the status telling the
kind: 401 (openai.AuthenticationError), 413/422 (bad input, `param` names the field), 429 (queue
full, with Retry-After), 503 (not ready or shutting down).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from calm_rag.errors import CalmRagError

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
          405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
          429: "rate_limit_error", 503: "service_unavailable"}


class ApiError(StarletteHTTPException):
    """An HTTP error with an OpenAI-shaped body; raise it anywhere in a route, or from a middleware's
    `receive` (FastAPI passes HTTP exceptions raised while it reads a body through unchanged)."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.param, self.code)


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "param": param,
                      "code": code}}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _param(location: tuple[Any, ...]) -> str | None:
    """('body', 'choices', 2) -> 'choices.2'; the body itself -> None."""
    parts = [str(part) for part in location if part != "body"]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the OpenAI shape: ours, FastAPI's validation errors, Starlette's 404/405,
    and `CalmRagError` (a problem with the input the library caught)."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"msg": "invalid request", "loc": ()}
        param = _param(tuple(first.get("loc", ())))
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        return JSONResponse(error_body(422, message, param, "invalid_value"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(error.status_code, str(error.detail)), status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(CalmRagError)
    async def _calm(_: Request, error: CalmRagError) -> JSONResponse:
        return JSONResponse(error_body(422, str(error), code="invalid_value"), status_code=422)
