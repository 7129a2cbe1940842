"""One module per contract; each function is the `operationId` target of one operation."""

from __future__ import annotations

import orjson
from starlette.responses import Response


def respond(body, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON response, serialised once with orjson (UTF-8, no ASCII escapes for Chinese)."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")
