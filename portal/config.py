"""Settings: one object, read from the environment (and `.env`), validated at start.

Every variable is listed with its default in `.env.example`. With none set the
portal runs on the embedded default: SQLite under `instance/`, jobs inline,
emails kept in the Outbox, rate limits in memory.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the portal refuses to start."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    PORTAL_ENV: str = "development"
    SECRET_KEY: str = ""
    DATABASE_URL: str = ""
    REDIS_URL: str = ""
    STORAGE_DIR: str = ""
    BASE_URL: str = "http://127.0.0.1:5000"
    TIMEZONE: str = "UTC"

    MAIL_SERVER: str = ""
    MAIL_PORT: int = 25
    MAIL_USE_TLS: bool = False
    MAIL_USE_SSL: bool = False
    MAIL_USERNAME: str = ""
    MAIL_PASSWORD: str = field(default="", repr=False)
    MAIL_FROM: str = "Ops Portal <portal@localhost>"
    MAIL_TIMEOUT: int = 10
    MAIL_MAX_ATTEMPTS: int = 4

    SELF_SERVICE_RESET: bool = False
    LOGIN_RATE_LIMIT: str = "10 per minute"
    LOCKOUT_THRESHOLD: int = 5
    LOCKOUT_WINDOW_MINUTES: int = 60
    LOCKOUT_MINUTES: int = 15
    INVITATION_HOURS: int = 72
    RESET_LINK_MINUTES: int = 60
    SESSION_IDLE_HOURS: int = 12
    SESSION_MAX_DAYS: int = 14
    SESSION_COOKIE_SECURE: bool = False
    AUDIT_HMAC_KEY: str = field(default="", repr=False)
    MAX_CONTENT_LENGTH: int = 16 * 1024 * 1024
    PROXY_COUNT: int = 0
    TICKET_AUTO_CLOSE_DAYS: int = 7
    TICKET_PENDING_RESOLVE_DAYS: int = 14
    ATTACHMENT_MAX_BYTES: int = 10 * 1024 * 1024
    SHARED_CACHE_SECONDS: int = 60
    EXPORT_RETENTION_DAYS: int = 7
    # An export of more rows than this raises a security alert (0: never).
    EXPORT_ALERT_ROWS: int = 100_000
    # Comma-separated addresses that receive security alerts and audit checkpoints.
    SECURITY_CONTACTS: str = ""
    # Audit checkpoints are also appended to a file here (empty: instance/checkpoints).
    AUDIT_CHECKPOINT_DIR: str = ""
    # A checkpoint is written every this many events, besides the periodic one (0: off).
    AUDIT_CHECKPOINT_EVERY: int = 10_000
    # Retention archives (gzip JSON Lines and a manifest) go here (empty: instance/archive).
    ARCHIVE_DIR: str = ""
    # Access reviews: days a campaign runs, days before its due date that reviewers are
    # reminded, and whether access still undecided at the due date is suspended.
    ACCESS_REVIEW_DUE_DAYS: int = 14
    ACCESS_REVIEW_REMINDER_DAYS: int = 3
    ACCESS_REVIEW_SUSPEND_UNDECIDED: bool = False

    @property
    def is_production(self) -> bool:
        return self.PORTAL_ENV == "production"

    @property
    def security_contacts(self) -> list[str]:
        return [a.strip() for a in self.SECURITY_CONTACTS.split(",") if a.strip()]

    @property
    def jobs_inline(self) -> bool:
        return not self.REDIS_URL

    def flask_config(self) -> dict[str, Any]:
        """The keys Flask and its extensions read, derived from the settings."""
        return {
            "SECRET_KEY": self.SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": self.DATABASE_URL,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
            "RATELIMIT_STORAGE_URI": self.REDIS_URL or "memory://",
            "RATELIMIT_HEADERS_ENABLED": True,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.SESSION_COOKIE_SECURE,
            "MAX_CONTENT_LENGTH": self.MAX_CONTENT_LENGTH,
            "WTF_CSRF_TIME_LIMIT": None,
            "SETTINGS": self,
        }


def _coerce(name: str, default: Any, raw: str) -> Any:
    if isinstance(default, bool):
        return _bool(name, raw)
    if isinstance(default, int):
        return _int(name, raw)
    return raw.strip()


def _dev_secret_key(instance_path: Path) -> str:
    """A per-checkout key kept in instance/, so the embedded default keeps its sessions."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def load_settings(
    instance_path: Path, environ: dict[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build the Settings from `environ` (default: the process environment) and overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif f.name in env:
            values[f.name] = _coerce(f.name, f.default, env[f.name])
    if "SHARED_CACHE_SECONDS" not in values and not values.get("REDIS_URL"):
        # Without Redis the shared cache lives in each process, and a write seen by one
        # process would not drop another's copy: share nothing unless asked to (one
        # process, as `flask run` is, may set it).
        values["SHARED_CACHE_SECONDS"] = 0
    settings = Settings(**values)
    return _validate(settings, instance_path)


def _validate(settings: Settings, instance_path: Path) -> Settings:
    changes: dict[str, Any] = {}
    if settings.PORTAL_ENV not in ("development", "production", "testing"):
        raise SettingsError("PORTAL_ENV must be development, production or testing")
    if not settings.SECRET_KEY:
        if settings.is_production:
            raise SettingsError("SECRET_KEY must be set in production")
        changes["SECRET_KEY"] = _dev_secret_key(instance_path)
    elif settings.is_production and len(settings.SECRET_KEY) < 32:
        raise SettingsError("SECRET_KEY must be at least 32 characters in production")
    if not settings.DATABASE_URL:
        changes["DATABASE_URL"] = f"sqlite:///{instance_path / 'portal.db'}"
    elif settings.DATABASE_URL.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; the plain scheme would ask for psycopg2.
        changes["DATABASE_URL"] = "postgresql+psycopg://" + settings.DATABASE_URL[13:]
    if not settings.STORAGE_DIR:
        changes["STORAGE_DIR"] = str(instance_path / "storage")
    if not settings.ARCHIVE_DIR:
        changes["ARCHIVE_DIR"] = str(instance_path / "archive")
    if settings.MAIL_USE_TLS and settings.MAIL_USE_SSL:
        raise SettingsError("MAIL_USE_TLS and MAIL_USE_SSL are exclusive")
    if settings.LOCKOUT_THRESHOLD < 1 or settings.LOCKOUT_MINUTES < 1:
        raise SettingsError("LOCKOUT_THRESHOLD and LOCKOUT_MINUTES must be positive")
    if settings.EXPORT_RETENTION_DAYS < 1:
        raise SettingsError("EXPORT_RETENTION_DAYS must be at least 1")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(settings.TIMEZONE)
    except Exception:
        raise SettingsError(f"TIMEZONE {settings.TIMEZONE!r} is not a known time zone") from None
    if changes:
        settings = Settings(**{**settings.__dict__, **changes})
    if not settings.AUDIT_HMAC_KEY:
        import hashlib

        derived = hashlib.sha256(b"audit-fingerprint:" + settings.SECRET_KEY.encode()).hexdigest()
        settings = Settings(**{**settings.__dict__, "AUDIT_HMAC_KEY": derived})
    return settings
