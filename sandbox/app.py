"""create_app(settings): one Connexion AsyncApp serving every contract in contracts/."""

from __future__ import annotations

import contextlib
import logging

from connexion.exceptions import ProblemException
from connexion.options import SwaggerUIOptions
from starlette.exceptions import HTTPException

from sandbox import problems
from sandbox.asgi import SECURITY_HANDLERS, SandboxApp
from sandbox.clock import Clock
from sandbox.context import Context
from sandbox.contracts import allowed_methods, load_contracts
from sandbox.fastpath import FastPath
from sandbox.handlers import resolver_for
from sandbox.refusals import Refusal
from sandbox.security.tokens import TokenCache
from sandbox.settings import Settings
from sandbox.store import open_store
from sandbox.validation import VALIDATORS
from sandbox.worker import Worker

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> SandboxApp:
    settings = settings or Settings.from_env()
    contracts = load_contracts(settings.contracts_dir)
    scopes = set().union(*(c.declared_scopes() for c in contracts))
    entries = [c.entry() for c in contracts]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        store = open_store(settings.db)
        await store.open()
        the_clock = clock or Clock()
        worker = Worker(store, the_clock, settings)
        try:
            await store.partners.bank_seed(settings.seed)
            worker.start()
            # On request.state, and passed to every handler as its `ctx`.
            yield {"ctx": Context(settings=settings, store=store, clock=the_clock,
                                  tokens=TokenCache(), worker=worker, scopes=frozenset(scopes),
                                  contracts=entries)}
        finally:
            await worker.stop()
            await store.close()

    # Every request goes through Connexion's middleware stack; in it, just before the router,
    # sandbox.fastpath limits bodies and serves the operations the fast path is sure of.
    fast_path = FastPath(contracts) if settings.fast_path else None
    app = SandboxApp(__name__, lifespan=lifespan, fast_path=fast_path,
                     max_body_bytes=settings.max_body_bytes,
                     max_form_bytes=settings.max_form_bytes)
    for contract in contracts:
        app.add_api(
            contract.spec,
            base_path=contract.base_path,
            name=contract.name,
            resolver=resolver_for(contract.name),
            strict_validation=True,
            validator_map=VALIDATORS,
            security_map=SECURITY_HANDLERS,
            swagger_ui_options=SwaggerUIOptions(
                swagger_ui=True, spec_path="/openapi.json",
                # x-problem-codes: each operation's codes, by status, shown under it.
                swagger_ui_config={"showExtensions": True}),
        )
    allowed = allowed_methods(contracts)
    errors = [(Refusal, problems.refused), (ProblemException, problems.http_error),
              (HTTPException, problems.http_error), (Exception, problems.unhandled_error)]

    async def method_not_allowed(request, exc):
        path = request.scope.get("path", "")
        for pattern, allow in allowed:
            if pattern.fullmatch(path):
                exc.headers = {**(exc.headers or {}), "Allow": allow}
                break
        return await problems.http_error(request, exc)

    app.add_error_handler(405, method_not_allowed)
    for exception, handler in errors:
        app.add_error_handler(exception, handler)
    return app
