"""API key check: with a key set, every route but /healthz needs `Authorization: Bearer <key>`.

A pure ASGI middleware, so it guards every route the app has or will have (including /metrics and
streaming ones) without each route remembering a dependency. The page itself (`/` and its static
assets) holds no data and is exempt, so a browser can load it; the page then sends the key the user
types with each API call. Keys are compared with `hmac.compare_digest`: the time a wrong key takes
does not tell how much of it was right.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from calm_rag.serving.errors import error_body

PUBLIC_PATHS = ("/healthz", "/", "/favicon.ico")
PUBLIC_PREFIX = "/static/"


class ApiKeyAuth:
    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.expected = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._public(scope["path"]) or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps(error_body(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                     code="invalid_api_key")).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _public(path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX)

    def _authorized(self, scope: Scope) -> bool:
        header = next((value for name, value in scope.get("headers", []) if name == b"authorization"), b"")
        scheme, _, token = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.expected)
