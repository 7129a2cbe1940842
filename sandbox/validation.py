"""Connexion's request validators, made to name the offending field and to build each JSON
Schema validator once per schema instead of once per request, with the contracts' regular
expressions read as ECMA-262 reads them (`$` is the end of the text), and refusing what no
field may hold whatever its schema says: text that is not Unicode (a lone surrogate), a body
without a media type, a form of more fields than Starlette parses.

A contract may say which problem a schema's rejection becomes, with an `x-problem` object on the
schema that failed (`{code: INVALID_CURSOR, detail: ...}`, plus any extra members); the extra
members of a request body's root `x-problem` go on every problem about that body (e.g. the
RFC 6749 `error` member of the token endpoint). Without one, bad input is VALIDATION_FAILED
with the validator's message: the stable codes live in the contract, beside the rule.
"""

from __future__ import annotations

import functools
import re

from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP
from connexion.validators.form_data import FormDataValidator, MultiPartFormDataValidator
from connexion.validators.json import JSONRequestBodyValidator
from connexion.validators.parameter import ParameterValidator
from jsonschema import Draft4Validator, FormatChecker, ValidationError, validators
from starlette.datastructures import Headers
from starlette.formparsers import FormParser, MultiPartException

from sandbox.refusals import (
    BadRequest,
    MalformedBody,
    Refusal,
    UnknownParameter,
    UnsupportedMedia,
    ValidationFailed,
    kind_of,
)

# Every format jsonschema can check: OpenAPI's `date` is no draft-4 format, so the draft-4
# checker Connexion uses let `from_date=9` through.
_FORMATS = FormatChecker()
_built: dict[int, tuple[dict, Draft4Validator]] = {}


@functools.lru_cache(maxsize=512)
def ecma_regex(pattern: str) -> re.Pattern:
    """A contract's `pattern` compiled so that it matches what ECMA-262 (OpenAPI's and JSON
    Schema's dialect, and jsonschema-rs's, the fast path's validator) matches: each `$` outside
    a character class is the end of the text (Python's `$` also matches before a final newline).

    Why here and not in each parser: validation is the one place that decides what an input
    may be. With Python's `$`, "1.00\\n" passed the Amount pattern, reached `Fen.from_yuan`
    and failed there with a 500; an id with a newline reached the store. Read this way, it is
    refused as VALIDATION_FAILED naming the field, by the fast path and by Connexion alike."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out))


def _ecma_pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.cache
def _ecma(cls):
    return validators.extend(cls, {"pattern": _ecma_pattern})


def validator_for(schema: dict, cls=Draft4Validator) -> Draft4Validator:
    # Keyed by identity: the specification's schema dicts live as long as the app.
    entry = _built.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, _ecma(cls)(schema, format_checker=_FORMATS))
        _built[id(schema)] = entry
    return entry[1]


def _declared_problem(schema) -> dict:
    problem = schema.get("x-problem") if isinstance(schema, dict) else None
    return problem if isinstance(problem, dict) else {}


def _problem_members(schema) -> dict:
    # The members a problem may carry beyond the RFC 7807 ones we always set ourselves.
    return {k: v for k, v in _declared_problem(schema).items()
            if k not in ("code", "detail", "type", "title", "status", "field", "headers")}


def _invalid(error: ValidationError, field: str, root: dict | None = None) -> BadRequest:
    path = ".".join(str(p) for p in error.absolute_path)
    declared = _declared_problem(error.schema)
    return kind_of(declared.get("code", ValidationFailed.code))(
        declared.get("detail", error.message), field=f"{field}.{path}" if path else field,
        **{**_problem_members(root), **_problem_members(error.schema)},
    )


class FieldParameterValidator(ParameterValidator):
    def validate_request(self, request) -> None:
        if self.strict_validation:
            extra = self.validate_query_parameter_list(
                request, security_params=self.security_query_params
            )
            if extra:
                name = sorted(extra)[0]
                raise UnknownParameter(f"Unknown query parameter {name!r}.",
                                       field=f"query.{name}")
        sources = (
            ("query", request.query_params),
            ("path", request.path_params),
            ("header", request.headers),
            ("cookie", request.cookies),
        )
        for location, values in sources:
            for param in self.parameters.get(location, ()):
                name = param["name"]
                value = values.get(name.replace("-", "_") if location == "path" else name)
                field = f"{location}.{name}"
                if value is None:
                    if param.get("required"):
                        raise ValidationFailed(f"Missing {location} parameter {name!r}.",
                                               field=field)
                    continue
                if is_nullable(param) and is_null(value):
                    continue
                try:
                    validator_for(param.get("schema", param)).validate(value)
                except ValidationError as error:
                    raise _invalid(error, field) from None


class _RequiredBody:
    """A required body that is not there is bad input like any other (Connexion's own check
    answers a bare 400 without a field); a body without a Content-Type is 415 (Connexion
    would take it for the operation's media type, then hand the handler its raw bytes)."""

    media_type: str

    async def wrap_receive(self, receive, *, scope):
        headers = Headers(scope=scope)
        length = int(headers.get("content-length", 0))
        if not length and self._required and self._schema.get("default") is None:
            raise ValidationFailed("The request body is required.", field="body",
                                   **_problem_members(self._schema))
        if (length or "transfer-encoding" in headers) and "content-type" not in headers:
            raise UnsupportedMedia(f"The request body has no Content-Type; send it as "
                                   f"{self.media_type}.", **_problem_members(self._schema))
        return await super().wrap_receive(receive, scope=scope)


def not_unicode(document, field: str = "body") -> str | None:
    """The field of the first text in a parsed JSON document that is not Unicode: a lone
    surrogate, which JSON's `\\ud800` escape makes and no encoder or database takes. (A
    schema cannot refuse it; hypothesis and schemathesis never generate one.)"""
    if isinstance(document, str):
        if not document.isascii():
            try:
                document.encode("utf-8")
            except UnicodeEncodeError:
                return field
        return None
    if isinstance(document, dict):
        for key, value in document.items():
            found = not_unicode(key, field) or not_unicode(value, f"{field}.{key}")
            if found:
                return found
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found = not_unicode(value, f"{field}.{index}")
            if found:
                return found
    return None


class FieldJSONBodyValidator(_RequiredBody, JSONRequestBodyValidator):
    media_type = "application/json"

    @property
    def _validator(self):
        return validator_for(self._schema, Draft4RequestValidator)

    def _validate(self, body):
        if not self._nullable and body is None:
            raise ValidationFailed("The request body must not be empty.", field="body")
        # Before the schema: a key or value that is not Unicode cannot even be shown in the
        # schema's message. (The fast path leaves such a body to Connexion: `fastpath._document`.)
        field = not_unicode(body)
        if field is not None:
            raise ValidationFailed("The text holds a lone surrogate, which is not Unicode.",
                                   field=field)
        try:
            return self._validator.validate(body)
        except ValidationError as error:
            raise _invalid(error, "body", self._schema) from None

    async def _parse(self, stream, scope):
        try:
            return await super()._parse(stream, scope)
        except Refusal:
            raise
        except Exception as exc:  # JSON that does not parse, bytes that do not decode
            detail = getattr(exc, "detail", None) or str(exc)
            raise MalformedBody(f"The body is not valid JSON: {detail}", field="body") from None


class FieldFormValidator(_RequiredBody, FormDataValidator):
    media_type = "application/x-www-form-urlencoded"

    @property
    def _validator(self):
        return validator_for(self._schema, Draft4RequestValidator)

    @property
    def _form_parser_cls(self):
        # The form's size is the body limit's (`sandbox.middleware`, SANDBOX_MAX_FORM_BYTES):
        # no part can be larger than the whole, so Starlette's own 1 MiB part limit is not
        # wanted; its limit on the number of fields stays.
        return functools.partial(FormParser, max_part_size=float("inf"))

    async def _parse(self, stream, scope):
        try:
            return await super()._parse(stream, scope)
        except MultiPartException as exc:  # too many fields
            raise ValidationFailed(exc.message, field="body",
                                   **_problem_members(self._schema)) from None

    def _validate(self, body):
        if not isinstance(body, dict):
            raise ValidationFailed("The form must be a mapping.", field="body",
                                   **_problem_members(self._schema))
        if self._strict_validation:
            extra = set(body) - set(self._schema.get("properties", {}))
            if extra:
                name = sorted(extra)[0]
                raise UnknownParameter(f"Unknown form field {name!r}.", field=f"body.{name}",
                                       **_problem_members(self._schema))
        try:
            self._validator.validate(body)
        except ValidationError as error:
            raise _invalid(error, "body", self._schema) from None


VALIDATORS = {
    **VALIDATOR_MAP,
    "parameter": FieldParameterValidator,
    "body": MediaTypeDict({
        "*/*json": FieldJSONBodyValidator,
        "application/x-www-form-urlencoded": FieldFormValidator,
        "multipart/form-data": MultiPartFormDataValidator,
    }),
}
