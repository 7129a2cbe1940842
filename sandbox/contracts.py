"""The contracts in contracts/: load, bundle shared components in, and describe what is served.

A section refers to shared pieces with `$ref: 'components.yaml#/...'`. Served documents must
stand alone (Swagger UI, schemathesis and partners download one file), so each is bundled:
every external reference is copied in under the same pointer and made local.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from pathlib import Path

import yaml


class ContractError(ValueError):
    """A contract cannot be loaded or bundled."""


@dataclasses.dataclass(frozen=True)
class Contract:
    name: str
    path: Path
    spec: dict  # bundled: no external references left

    @property
    def title(self) -> str:
        return self.spec["info"]["title"]

    @property
    def version(self) -> str:
        return str(self.spec["info"]["version"])

    @property
    def base_path(self) -> str:
        """The first server URL's path; "" for a contract served at the root."""
        return self.spec.get("servers", [{"url": "/"}])[0]["url"].rstrip("/")

    @property
    def spec_url(self) -> str:
        return f"{self.base_path}/openapi.json"

    @property
    def docs_url(self) -> str:
        return f"{self.base_path}/ui/"

    def entry(self) -> dict:
        return {
            "name": self.name, "title": self.title, "version": self.version,
            "base_path": self.base_path or "/", "spec_url": self.spec_url,
            "docs_url": self.docs_url,
        }

    def declared_scopes(self) -> set[str]:
        scopes: set[str] = set()
        for scheme in self.spec.get("components", {}).get("securitySchemes", {}).values():
            for flow in scheme.get("flows", {}).values():
                scopes.update(flow.get("scopes", {}))
        return scopes


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def allowed_methods(contracts: list[Contract]) -> list[tuple[re.Pattern, str]]:
    """For each served path, a pattern of its URLs and its `Allow` header value.

    Connexion routes each operation on its own, so Starlette's 405 names only the methods of
    the first route it tried; a path with several operations needs the whole list."""
    out = []
    for contract in contracts:
        for template, item in contract.spec["paths"].items():
            methods = {m.upper() for m in HTTP_METHODS if m in item}
            if "GET" in methods:
                methods.add("HEAD")
            pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(contract.base_path + template))
            out.append((re.compile(pattern), ", ".join(sorted(methods))))
    return out


@functools.lru_cache(maxsize=64)
def _read_yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"cannot read {path}: {exc}") from exc


def _resolve(doc: dict, pointer: str, where: str):
    node = doc
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        try:
            node = node[part]
        except (KeyError, TypeError):
            raise ContractError(f"unresolvable $ref {where}#{pointer}") from None
    return node


def bundle(doc: dict, base_dir: Path) -> dict:
    """`doc` with every `$ref: 'file.yaml#/pointer'` copied in at `#/pointer` and made local."""
    out = copy.deepcopy(doc)
    wanted: list[tuple[Path, str]] = []

    def make_local(node, file: Path | None) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target, _, pointer = ref.partition("#")
                if target:
                    node["$ref"] = "#" + pointer
                    wanted.append(((base_dir / target).resolve(), pointer))
                elif file is not None:  # local to the other file: it must come along too
                    wanted.append((file, pointer))
            for value in node.values():
                make_local(value, file)
        elif isinstance(node, list):
            for item in node:
                make_local(item, file)

    make_local(out, None)
    copied: set[tuple[Path, str]] = set()
    while wanted:
        file, pointer = wanted.pop()
        if (file, pointer) in copied:
            continue
        copied.add((file, pointer))
        node = copy.deepcopy(_resolve(_read_yaml(file), pointer, file.name))
        make_local(node, file)
        *parents, last = pointer.lstrip("/").split("/")
        parent = out
        for part in parents:
            parent = parent.setdefault(part, {})
        if last in parent and parent[last] != node:
            raise ContractError(f"{file.name}#{pointer} clashes with a local definition")
        parent[last] = node
    return out


def load_contracts(contracts_dir: Path) -> list[Contract]:
    """Every servable contract (a document with paths), root-mounted ones last."""
    contracts = []
    for path in sorted(Path(contracts_dir).glob("*.yaml")):
        raw = _read_yaml(path.resolve())
        if not isinstance(raw, dict) or not raw.get("paths"):
            continue  # a library of shared components, not an API
        contracts.append(Contract(path.stem, path, bundle(raw, path.parent)))
    if not contracts:
        raise ContractError(f"no contracts with paths in {contracts_dir}")
    # A contract at the root would shadow every other base path if mounted first.
    return sorted(contracts, key=lambda c: (c.base_path == "", c.name))
