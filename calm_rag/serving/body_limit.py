"""Request body size limit with an OpenAI-shaped 413.

FastAPI's own `max_body_size` answers a declared Content-Length over the limit with a plain-text
"Content Too Large" whatever the app's error handlers say, and OpenAI clients expect JSON errors;
so this small pure ASGI middleware does the same check: by Content-Length before the app runs, and
by counting a chunked body's bytes as the route reads them.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calm_rag.serving.errors import ApiError, error_response


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> ApiError:
        return ApiError(413, f"the request body is larger than {self.max_bytes} bytes", code="request_too_large",
                        headers={"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(self._error())(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._error()
            return message

        await self.app(scope, counting_receive, send)
