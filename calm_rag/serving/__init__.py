"""`calm-rag serve`: calm-rag over HTTP (a native API, an OpenAI-compatible one, a web page).

Nothing else in calm-rag imports this package; it is the server's alone. `create_app(qa, settings)`
returns the ASGI app for any ASGI server.
"""

from calm_rag.serving.app import create_app
from calm_rag.serving.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
