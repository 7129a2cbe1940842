"""Bank profiles (fixtures/profiles/*.yaml): how many customers, accounts and days of history."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import yaml


class ProfileError(ValueError):
    """A profile file is missing or malformed."""


@dataclasses.dataclass(frozen=True)
class BankProfile:
    name: str
    as_of: dt.date
    history_days: int
    individual_customers: int
    company_customers: int
    type_ii_share: float
    type_iii_share: float
    company_accounts: tuple[int, int]
    spending_per_week: tuple[int, int]


def load_profile(fixtures_dir: Path, name: str) -> BankProfile:
    path = Path(fixtures_dir) / "profiles" / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ProfileError(
            f"no bank profile {name!r}; known profiles: {', '.join(known)}"
        ) from None
    try:
        profile = BankProfile(
            name=name,
            as_of=raw["as_of"],
            history_days=int(raw["history_days"]),
            individual_customers=int(raw["individual_customers"]),
            company_customers=int(raw["company_customers"]),
            type_ii_share=float(raw["type_ii_share"]),
            type_iii_share=float(raw["type_iii_share"]),
            company_accounts=tuple(raw["company_accounts"]),
            spending_per_week=tuple(raw["spending_per_week"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"bank profile {path.name} is malformed: {exc!r}") from exc
    if not isinstance(profile.as_of, dt.date) or profile.history_days < 1:
        raise ProfileError(f"bank profile {path.name}: as_of must be a date, history_days >= 1")
    return profile
