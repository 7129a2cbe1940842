"""The request path for operations whose inputs are plain, compiled once from the contracts,
and the request-body limit: one middleware in Connexion's stack, just before its router.

Connexion spends most of a cheap request in its middleware chain: two routers over five
mounts, an exception layer per middleware, and per-operation lookups before the handler runs.
For an operation whose parameters are scalars in the path, query or headers, whose body (if
any) is JSON, and whose security is one OAuth2 requirement, the same work fits in a few
steps decided at start-up: match the path, check the bearer token with the contract's
`x-tokenInfoFunc` and `x-scopeValidateFunc`, validate each parameter and the body against
Connexion's own resolved schemas (compiled with jsonschema-rs where that is at least as strict
as the validators Connexion is given, `sandbox.validation`, else with those), and call the
handler with the arguments Connexion would pass.

The fast path only ever says yes. Whatever it is not sure of — no token or a refused one, a
parameter or body that does not validate, an unknown query parameter, a repeated one, a path
two operations could match, a content type other than JSON — goes to Connexion untouched, so
every refusal of bad input is Connexion's own answer. The token, the parameters and the content
type are checked before a byte of the body is read: a request refused on those reaches
Connexion with its body unread; one refused on its body gets the body it read replayed.

`sandbox.middleware.FastPathMiddleware` serves it, inside Connexion's middleware stack just
before its router; what a handler raises becomes a problem through the handlers the app
registers, exactly as on the chain. `SANDBOX_FAST_PATH=0` turns it off.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import re
import typing as t
import urllib.parse

import jsonschema_rs
import orjson
from connexion.context import _context, _receive, _scope
from connexion.decorators.parameter import sanitized
from connexion.json_schema import Draft4RequestValidator, resolve_refs
from connexion.lifecycle import ConnexionRequest
from connexion.utils import get_function_from_name, inspect_function_arguments
from jsonschema import Draft4Validator
from starlette.responses import Response

from sandbox.handlers import handler_name
from sandbox.validation import validator_for

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_SCALARS = {"string", "integer", "number", "boolean"}
_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_BOOLEANS = {"true": True, "false": False}


class _NotSure(Exception):
    """Connexion decides this request."""


@dataclasses.dataclass
class _Param:
    name: str
    location: str  # path, query or header
    type: str
    required: bool
    schema: dict
    validator: t.Any
    default: t.Any = dataclasses.field(default=None)
    has_default: bool = False

    def value(self, raw: str):
        """The value as Connexion's URI parser types it, or _NotSure."""
        if self.type == "string":
            return raw
        if self.type == "integer" and _INTEGER.fullmatch(raw):
            return int(raw)
        if self.type == "number" and _NUMBER.fullmatch(raw):
            return float(raw)
        if self.type == "boolean" and raw in _BOOLEANS:
            return _BOOLEANS[raw]
        raise _NotSure


@dataclasses.dataclass
class _Operation:
    operation_id: str
    handler: t.Callable
    arguments: set
    has_kwargs: bool
    path: list[_Param]
    query: dict[str, _Param]
    headers: list[_Param]
    scopes: list[str] | None  # None: no security
    token_info: t.Callable | None
    validate_scope: t.Callable | None
    body_schema: dict | None
    body_validator: t.Any  # None: no request body
    body_name: str = "body"

    def accepts(self, name: str) -> bool:
        return self.has_kwargs or name in self.arguments


def _has_key(schema, keys: set) -> bool:
    if isinstance(schema, dict):
        return bool(keys & schema.keys()) or any(_has_key(v, keys) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_key(v, keys) for v in schema)
    return False


def _checker(schema: dict, cls=Draft4Validator):
    """Something with `is_valid` that accepts only what Connexion's validator accepts.

    jsonschema-rs (compiled, ~30x faster) where it is at least as strict as the Python
    validator Connexion uses. It accepts dates Python refuses (year 0000, leap seconds) and
    knows nothing of OpenAPI's `nullable` or `readOnly`, which Connexion's request validator
    treats specially: a schema with any of those keeps the Python validator. Its regexes are
    ECMA's: `$` does not match before a final newline and `\\d` is ASCII, both stricter than
    Python's."""
    if _has_key(schema, {"format", "readOnly", "nullable"}):
        return validator_for(schema, cls)
    return jsonschema_rs.Draft4Validator(schema)


def _pattern(template: str) -> re.Pattern:
    """Starlette's matching of a path template: each `{name}` is one non-empty segment."""
    parts = re.split(r"\{([^}]+)\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)"
                    for i, part in enumerate(parts))
    return re.compile(regex)


def _compile(contract, spec: dict, operation: dict, item_parameters: list) -> _Operation | None:
    """The operation, if every input it takes is one the fast path checks exactly as
    Connexion does; otherwise None and Connexion serves it."""
    params: dict[tuple[str, str], dict] = {}
    for param in [*item_parameters, *operation.get("parameters", [])]:
        params[(param["in"], param["name"])] = param
    compiled: list[_Param] = []
    for (location, name), param in params.items():
        schema = param.get("schema", {})
        if (location not in ("path", "query", "header") or schema.get("type") not in _SCALARS
                or schema.get("nullable") or "content" in param or param.get("style")
                or (location != "header" and sanitized(name) != name)):
            return None
        compiled.append(_Param(
            name=name, location=location, type=schema["type"], schema=schema,
            required=bool(param.get("required")), validator=_checker(schema),
            default=schema.get("default"), has_default="default" in schema))
    security = operation.get("security", spec.get("security", []))
    schemes = spec.get("components", {}).get("securitySchemes", {})
    token_info = validate_scope = scopes = None
    if security:
        if len(security) != 1 or len(security[0]) != 1:
            return None
        ((scheme_name, scopes),) = security[0].items()
        scheme = schemes.get(scheme_name, {})
        if scheme.get("type") != "oauth2" or "x-tokenInfoFunc" not in scheme:
            return None
        token_info = get_function_from_name(scheme["x-tokenInfoFunc"])
        validate_scope = get_function_from_name(scheme["x-scopeValidateFunc"])
    body_validator = body_schema = None
    body_name = "body"
    if "requestBody" in operation:
        content = operation["requestBody"].get("content", {})
        if list(content) != ["application/json"]:
            return None
        body_schema = content["application/json"].get("schema", {})
        if body_schema.get("nullable"):
            return None
        body_validator = _checker(body_schema, Draft4RequestValidator)
        body_name = sanitized(operation["requestBody"].get("x-body-name", "body"))
    module = importlib.import_module(f"sandbox.handlers.{contract.name}")
    handler = getattr(module, handler_name(operation["operationId"]))
    arguments, has_kwargs = inspect_function_arguments(handler)
    return _Operation(
        operation_id=operation["operationId"], handler=handler, arguments=set(arguments),
        has_kwargs=has_kwargs,
        path=[p for p in compiled if p.location == "path"],
        query={p.name: p for p in compiled if p.location == "query"},
        headers=[p for p in compiled if p.location == "header"],
        scopes=list(scopes) if scopes is not None else None, token_info=token_info,
        validate_scope=validate_scope, body_schema=body_schema, body_validator=body_validator,
        body_name=body_name)


class FastPath:
    """Routes of every contract; `match` gives the fast operation for a request, or None."""

    def __init__(self, contracts):
        # Path templates by segment count: (pattern, {METHOD: operation or None}).
        self._routes: dict[int, list[tuple[re.Pattern, dict]]] = {}
        self.operations: dict[str, _Operation] = {}  # the fast ones, by operationId
        for contract in contracts:
            # Connexion validates against the contract with every reference resolved: so do we.
            spec = resolve_refs(copy.deepcopy(contract.spec))
            for template, item in spec.get("paths", {}).items():
                full = contract.base_path + template
                methods = {}
                for method in HTTP_METHODS:
                    operation = item.get(method)
                    if isinstance(operation, dict):
                        fast = _compile(contract, spec, operation, item.get("parameters", []))
                        methods[method.upper()] = fast
                        if fast is not None:
                            self.operations[fast.operation_id] = fast
                self._routes.setdefault(full.count("/"), []).append((_pattern(full), methods))

    def match(self, scope) -> tuple[_Operation, dict] | None:
        path = scope["path"]
        found = None
        for pattern, methods in self._routes.get(path.count("/"), ()):
            matched = pattern.fullmatch(path)
            if matched is not None:
                if found is not None:
                    return None  # two templates match: Connexion's router decides
                found = (methods, matched)
        if found is None:
            return None
        operation = found[0].get(scope["method"])
        return (operation, found[1].groupdict()) if operation is not None else None

    async def __call__(self, scope, receive, send, matched, fallback,
                       length: int | None) -> None:
        """Serve the matched operation, or hand the request to `fallback` (Connexion's router)
        untouched; `length` is the request's Content-Length. What the handler raises goes up
        to Connexion's ExceptionMiddleware."""
        operation, path_values = matched
        if operation.body_validator is not None and not length:
            # Connexion takes a request without a Content-Length (chunked) or with 0 for one
            # without a body, and answers that the body is required: all ours are.
            await fallback(scope, receive, send)
            return
        request = ConnexionRequest(scope, receive)
        try:
            kwargs = await self._prepare(operation, scope, request, path_values)
        except Exception:  # _NotSure, or the token function's own refusal: body still unread
            await fallback(scope, receive, send)
            return
        if operation.body_validator is not None:
            body = await _read_body(receive)  # past the body limit: PayloadTooLarge
            if body is None:
                return  # the client left before it sent the body
            receive = _replay(body, receive)
            try:
                document = _document(operation, body)
            except _NotSure:
                await fallback(scope, receive, send)
                return
            if operation.accepts(operation.body_name):
                kwargs[operation.body_name] = document
        _scope.set(scope)
        _receive.set(receive)
        response = await operation.handler(**kwargs)
        if not isinstance(response, Response):
            raise TypeError(f"{operation.operation_id} answered {type(response).__name__}, "
                            "not a Response")
        await response(scope, receive, send)

    async def _prepare(self, operation: _Operation, scope, request, path_values) -> dict:
        """The handler's arguments but the body, as Connexion would pass them; _NotSure if
        Connexion might answer anything but the handler's answer. Reads no body."""
        kwargs = {}
        context = scope.setdefault("extensions", {}).setdefault("connexion_context", {})
        _context.set(context)
        if operation.scopes is not None:
            authorization = request.headers.get("authorization")
            if not authorization:
                raise _NotSure
            try:
                kind, token = authorization.split(None, 1)
            except ValueError:
                raise _NotSure from None
            if kind.lower() != "bearer":
                raise _NotSure
            info = await operation.token_info(token, request=request)
            if info is None or not operation.validate_scope(
                    operation.scopes, info.get("scope", info.get("scopes", ""))):
                raise _NotSure
            context.update({"user": info.get("sub"), "token_info": info})
        for param in operation.path:
            value = path_values[param.name]
            if not param.validator.is_valid(value):
                raise _NotSure
            if operation.accepts(param.name):
                kwargs[param.name] = value
        for param in operation.headers:
            raw = request.headers.get(param.name)
            if raw is None:
                if param.required:
                    raise _NotSure
                continue
            if not param.validator.is_valid(param.value(raw)):
                raise _NotSure
        seen = set()
        if scope["query_string"]:
            query = urllib.parse.parse_qsl(scope["query_string"].decode("latin-1"),
                                           keep_blank_values=True, errors="strict")
            for name, raw in query:
                param = operation.query.get(name)
                if param is None or name in seen:
                    raise _NotSure  # unknown (strict validation) or repeated
                seen.add(name)
                value = param.value(raw)
                if not param.validator.is_valid(value):
                    raise _NotSure
                if operation.accepts(name):
                    kwargs[name] = value
        for name, param in operation.query.items():
            if name not in seen:
                if param.required:
                    raise _NotSure
                if param.has_default and operation.accepts(name):
                    kwargs[name] = param.default  # a scalar: nothing to copy
        if operation.body_validator is not None and request.headers.get(
                "content-type", "").split(";")[0].strip() != "application/json":
            raise _NotSure
        for key, value in context.items():
            if operation.accepts(key):
                kwargs[key] = value
        return kwargs


def _document(operation: _Operation, body: bytes):
    """The JSON body, if the operation's schema takes it; else _NotSure. (orjson refuses a
    lone surrogate: Connexion's validator names its field, `sandbox.validation.not_unicode`.)"""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _NotSure from None
    if document is None or not operation.body_validator.is_valid(document):
        raise _NotSure
    return document


async def _read_body(receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    """A receive that gives `body` once, then whatever the client sends next: the handler and
    Connexion, if it decides, read the body as if nobody had."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
