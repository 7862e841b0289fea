import dataclasses
import re
from pathlib import Path

import pytest

from portal import ROOT, create_app
from portal.config import Settings, SettingsError, load_settings
from tests.conftest import settings_for_tests


def test_env_example_documents_every_setting():
    text = (ROOT / ".env.example").read_text()
    missing = [
        f.name for f in dataclasses.fields(Settings) if not re.search(rf"^{f.name}=", text, re.M)
    ]
    assert missing == []


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path):
    with pytest.raises(SettingsError, match="SECRET_KEY must be set"):
        load_settings(tmp_path, {"PORTAL_ENV": "production"})
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings(tmp_path, {"PORTAL_ENV": "production", "SECRET_KEY": "short"})


def test_bad_values_are_named(tmp_path: Path):
    with pytest.raises(SettingsError, match="MAIL_PORT must be a whole number"):
        load_settings(tmp_path, {"MAIL_PORT": "twenty-five"})
    with pytest.raises(SettingsError, match="SELF_SERVICE_RESET must be true or false"):
        load_settings(tmp_path, {"SELF_SERVICE_RESET": "maybe"})
    with pytest.raises(SettingsError, match="TIMEZONE"):
        load_settings(tmp_path, {"TIMEZONE": "Mars/Olympus"})


def test_embedded_default_needs_no_settings(tmp_path: Path):
    settings = load_settings(tmp_path, {})
    assert f"sqlite:///{tmp_path / 'portal.db'}" == settings.DATABASE_URL
    assert settings.jobs_inline and len(settings.SECRET_KEY) == 64
    assert load_settings(tmp_path, {}).SECRET_KEY == settings.SECRET_KEY  # kept across starts
    assert "MAIL_PASSWORD" not in repr(load_settings(tmp_path, {"MAIL_PASSWORD": "pw-secret"}))


def test_postgres_urls_use_the_shipped_driver(tmp_path: Path):
    settings = load_settings(tmp_path, {"DATABASE_URL": "postgresql://u@h/db"})
    assert settings.DATABASE_URL == "postgresql+psycopg://u@h/db"


def test_create_app_does_not_connect(tmp_path: Path):
    app = create_app(
        settings_for_tests(
            DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", REDIS_URL="redis://127.0.0.1:1/0"
        )
    )
    assert app.config["SETTINGS"].REDIS_URL.endswith(":1/0")


def test_the_shared_cache_is_off_without_redis_unless_asked(tmp_path: Path):
    # Without Redis each process would keep its own copy: a write through one would
    # not drop another's.
    assert load_settings(tmp_path, {}).SHARED_CACHE_SECONDS == 0
    with_redis = load_settings(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert with_redis.SHARED_CACHE_SECONDS == 60
    assert load_settings(tmp_path, {"SHARED_CACHE_SECONDS": "30"}).SHARED_CACHE_SECONDS == 30
