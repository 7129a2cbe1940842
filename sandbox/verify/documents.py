"""Reading the OpenAPI documents the contract checks work on: a file of ours or anyone's, or one
of the contracts in contracts/ by name. External `$ref`s to sibling files are bundled in, so each
check sees one self-contained document."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sandbox.contracts import ContractError, bundle
from sandbox.settings import Settings

CONTRACTS_DIR = Settings.contracts_dir
# The keys of a path item that hold operations.
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class DocumentError(ValueError):
    """A document cannot be used: unreadable, not YAML/JSON, not an OpenAPI 3 document.
    Commands report it in one line and exit 2 (usage error)."""


def resolve(path_or_name: str, contracts_dir: Path = CONTRACTS_DIR) -> Path:
    """A path as given, or `NAME` for contracts/NAME.yaml."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    named = contracts_dir / f"{path_or_name}.yaml"
    if "/" not in path_or_name and not path.suffix and named.is_file():
        return named
    if path.exists() or path.suffix or "/" in path_or_name:
        return path  # reading it says what is wrong
    known = sorted(p.stem for p in contracts_dir.glob("*.yaml") if p.stem != "components")
    raise DocumentError(f"no such file or contract: {path_or_name!r} "
                        f"(contracts by name: {', '.join(known)})")


def load(path_or_name: str, contracts_dir: Path = CONTRACTS_DIR) -> tuple[Path, dict]:
    """(path, document) with external references bundled in; DocumentError if unusable."""
    path = resolve(path_or_name, contracts_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = (json.loads(text) if path.suffix == ".json" else yaml.safe_load(text))
    except (ValueError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise DocumentError(f"{path} is not valid YAML or JSON{at}") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3."):
        raise DocumentError(f"{path} is not an OpenAPI 3 document (no 'openapi: 3.x' field)")
    try:
        return path, bundle(document, path.resolve().parent)
    except ContractError as exc:
        raise DocumentError(f"{path}: {exc}") from None
