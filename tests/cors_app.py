"""A test-only app factory: the sandbox's app with a user middleware added the way Connexion
documents it, for tests that serve it with uvicorn (`Server(..., factory="cors_app:create_app")`).

Starlette's CORSMiddleware at `MiddlewarePosition.BEFORE_EXCEPTION`: it must see every request
and answer, fast path or not. The sandbox itself has no CORS setting; this is the tests' own.
"""

from __future__ import annotations

from connexion.middleware import MiddlewarePosition
from starlette.middleware.cors import CORSMiddleware

from sandbox.app import create_app as create_sandbox_app

ORIGIN = "https://partner-app.example"


def create_app():
    app = create_sandbox_app()
    app.add_middleware(
        CORSMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
        allow_origins=[ORIGIN], allow_methods=["*"], allow_headers=["*"], max_age=600,
        expose_headers=["Location", "Idempotent-Replayed", "WWW-Authenticate", "Allow"],
    )
    return app
