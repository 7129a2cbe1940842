"""Traffic profiles (fixtures/traffic/NAME.yaml): the mix of flows, the partner population and
the 24-hour curve, scaled to any number of calls and compressed into any duration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from sandbox.settings import PROJECT_ROOT

TRAFFIC_DIR = PROJECT_ROOT / "fixtures" / "traffic"
# Every step a flow may take: the section (contract) and operationId it calls.
STEPS = {
    "listAccounts": ("accounts", "listAccounts"), "getBalance": ("accounts", "getBalance"),
    "listTransactions": ("accounts", "listTransactions"),
    "listCustomers": ("accounts", "listCustomers"), "getCustomer": ("accounts", "getCustomer"),
    "createTransfer": ("payments", "createTransfer"), "getPayment": ("payments", "getPayment"),
    "listBanks": ("payments", "listBanks"), "refreshToken": ("platform", "issueToken"),
}


class ProfileError(ValueError):
    """A profile that cannot be used; the message says which field and why."""


@dataclasses.dataclass(frozen=True)
class Flow:
    name: str
    weight: float
    steps: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    description: str
    calls: int
    duration_s: float
    partners: int
    customers_per_partner: int
    flows: tuple[Flow, ...]
    curve: tuple[float, ...]  # 24 hourly weights, 00:00 first
    day_calls: int = 0  # the real day's calls, whatever `calls` the run is scaled to

    def scaled(self, calls: int | None = None, duration_s: float | None = None) -> Profile:
        return dataclasses.replace(self, calls=calls or self.calls,
                                   duration_s=duration_s or self.duration_s)

    @property
    def calls_per_flow(self) -> float:
        """The mean number of calls a flow makes, weighted by how often each flow starts."""
        total = sum(f.weight for f in self.flows)
        return sum(f.weight * len(f.steps) for f in self.flows) / total

    def hour_at(self, elapsed_s: float) -> int:
        """Which hour of the day the run is replaying `elapsed_s` into it."""
        return min(23, max(0, int(elapsed_s * 24 / self.duration_s)))

    def rate_at(self, elapsed_s: float) -> float:
        """Calls per second the run should make `elapsed_s` into it."""
        share = self.curve[self.hour_at(elapsed_s)] / sum(self.curve)
        return self.calls * share / (self.duration_s / 24)

    def busiest_minute(self) -> float:
        """Calls in the busiest minute of the real (uncompressed) day."""
        return (self.day_calls or self.calls) * max(self.curve) / sum(self.curve) / 60

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Profile:
        return cls(**{**data, "flows": tuple(Flow(**{**f, "steps": tuple(f["steps"])})
                                             for f in data["flows"]),
                      "curve": tuple(data["curve"])})


def load_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if not path.is_file():
        path = TRAFFIC_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TRAFFIC_DIR.glob("*.yaml")))
        raise ProfileError(f"no traffic profile {name_or_path!r} (profiles: {known})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from None
    return parse(raw, str(path))


def parse(raw: dict, where: str) -> Profile:
    def need(key: str, kind: type, positive: bool = True):
        value = raw.get(key) if isinstance(raw, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool) or (positive and value <= 0):
            raise ProfileError(f"{where}: '{key}' must be a positive number")
        return value

    flows = []
    for name, flow in (raw.get("flows") or {}).items():
        steps = tuple(flow.get("steps") or ()) if isinstance(flow, dict) else ()
        unknown = [s for s in steps if s not in STEPS]
        if not steps or unknown:
            raise ProfileError(f"{where}: flow {name!r} needs steps from {', '.join(STEPS)}"
                               + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        weight = flow.get("weight")
        if not isinstance(weight, (int, float)) or weight <= 0:
            raise ProfileError(f"{where}: flow {name!r} needs a positive weight")
        flows.append(Flow(name, float(weight), steps))
    if not flows:
        raise ProfileError(f"{where}: 'flows' must name at least one flow")
    curve = raw.get("curve")
    if (not isinstance(curve, list) or len(curve) != 24
            or not all(isinstance(w, (int, float)) and w >= 0 for w in curve) or not sum(curve)):
        raise ProfileError(f"{where}: 'curve' must be 24 hourly weights, not all zero")
    return Profile(name=str(raw.get("name") or Path(where).stem),
                   description=str(raw.get("description") or ""), calls=need("calls", int),
                   duration_s=float(need("duration_s", (int, float))),
                   partners=need("partners", int),
                   customers_per_partner=need("customers_per_partner", int),
                   flows=tuple(flows), curve=tuple(float(w) for w in curve),
                   day_calls=need("calls", int))
