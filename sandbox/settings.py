"""SANDBOX_* environment variables → typed settings, read once at start.

Every command-line flag has an environment twin (`--db` ↔ `SANDBOX_DB`); a flag wins over the
variable, the variable over the default. A value that does not parse fails at start-up.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is present but unusable; raised at start-up with the variable's name."""


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 <= value < 10**7:
        raise SettingsError(f"{name} must be between 0 and 10000000 seconds, got {raw!r}")
    return value


def _schedule(name: str, raw: str) -> tuple[float, ...]:
    return tuple(_seconds(name, part.strip()) for part in raw.split(",") if part.strip())


#: Seconds to wait after each failed delivery of a notification before the next attempt;
#: after the last, the notification is "failed" until the partner asks for a redelivery.
NOTIFY_BACKOFF = (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _bytes(name: str, raw: str) -> int:
    value = _int(name, raw)
    if value < 1:
        raise SettingsError(f"{name} must be a number of bytes of at least 1, got {raw!r}")
    return value


def _flag(name: str, raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    db: str = "sqlite:///sandbox.db"
    seed: int | None = None  # None: the database's own seed (1 for a new database)
    workers: int = 1
    token_ttl: int = 3600  # seconds an access token lives
    profile: str = "default"  # fixtures/profiles/<profile>.yaml: the shape of a synthetic bank
    contracts_dir: Path = PROJECT_ROOT / "contracts"
    fixtures_dir: Path = PROJECT_ROOT / "fixtures"
    log_level: str = "info"
    notify_backoff: tuple[float, ...] = NOTIFY_BACKOFF  # SANDBOX_NOTIFY_BACKOFF=1,5,30,...
    notify_timeout: float = 5.0  # seconds a receiver has to answer one delivery
    interbank_delay: float = 2.0  # seconds a payment to another bank stays pending
    fast_path: bool = True  # SANDBOX_FAST_PATH=0: every request through Connexion's chain
    max_body_bytes: int = 1_048_576  # a request body above this is refused with 413
    # Ranges (CIDR) callbacks may go to besides public addresses: SANDBOX_CALLBACK_ALLOW=a,b
    callback_allow: tuple[str, ...] = ()
    max_form_bytes: int = 65_536  # a form body (the token endpoint's) above this: 413
    max_header_bytes: int = 16_384  # a request line and headers above this: 431
    header_timeout: float = 10.0  # seconds a request's line and headers may take to arrive
    body_timeout: float = 10.0  # seconds a request's body may stop before the next bytes
    keep_alive_timeout: float = 5.0  # seconds an idle connection is kept between requests
    # Failed client secrets (per client id) and passwords (per customer) allowed in a window;
    # past that, every check is answered 429 until the window ends.
    auth_failures: int = 10  # SANDBOX_AUTH_FAILURES
    auth_window_s: float = 60.0  # SANDBOX_AUTH_WINDOW_S

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> Settings:
        """Settings from `SANDBOX_*` variables, then `overrides` (flags) where they are not None."""
        env = os.environ if env is None else env
        values: dict = {}
        for field in dataclasses.fields(cls):
            name = "SANDBOX_" + field.name.upper()
            if name not in env:
                continue
            raw = env[name]
            if field.name in ("port", "workers", "token_ttl", "seed", "auth_failures"):
                values[field.name] = _int(name, raw)
            elif field.name == "notify_backoff":
                values[field.name] = _schedule(name, raw)
            elif field.name in ("notify_timeout", "interbank_delay", "header_timeout",
                                "body_timeout", "keep_alive_timeout", "auth_window_s"):
                values[field.name] = _seconds(name, raw)
            elif field.name == "fast_path":
                values[field.name] = _flag(name, raw)
            elif field.name.startswith("max_") and field.name.endswith("_bytes"):
                values[field.name] = _bytes(name, raw)
            elif field.name == "callback_allow":
                values[field.name] = tuple(r.strip() for r in raw.split(",") if r.strip())
            elif field.name.endswith("_dir"):
                values[field.name] = Path(raw)
            else:
                values[field.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if not (0 < self.port < 65536):
            raise SettingsError(f"port must be between 1 and 65535, got {self.port}")
        if self.workers < 1:
            raise SettingsError(f"workers must be at least 1, got {self.workers}")
        if self.token_ttl < 1:
            raise SettingsError(f"token_ttl must be at least 1 second, got {self.token_ttl}")
        if self.notify_timeout <= 0:
            raise SettingsError(
                f"notify_timeout must be above 0 seconds, got {self.notify_timeout}")
        for name in ("max_body_bytes", "max_form_bytes", "max_header_bytes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1 byte, got {getattr(self, name)}")
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be above 0 seconds, got {getattr(self, name)}")
        for cidr in self.callback_allow:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise SettingsError(f"callback_allow must be CIDR ranges such as 172.18.0.0/16, "
                                    f"got {cidr!r}") from None
        if self.auth_failures < 1 or self.auth_window_s < 1:
            raise SettingsError("auth_failures and auth_window_s must be at least 1, got "
                                f"{self.auth_failures} and {self.auth_window_s}")
        if not self.db.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise SettingsError(
                f"db must be a sqlite:/// or postgresql:// URL, got {self.db!r}"
            )
        if not self.contracts_dir.is_dir():
            raise SettingsError(f"contracts directory not found: {self.contracts_dir}")
