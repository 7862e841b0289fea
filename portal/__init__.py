"""Ops Portal: the application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from .config import load_settings

ROOT = Path(__file__).resolve().parent.parent
__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. `config` overrides settings (as in tests); nothing runs at import."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    from dotenv import load_dotenv

    load_dotenv(ROOT / ".env")
    overrides = dict(config or {})
    flask_overrides = {k: overrides.pop(k) for k in list(overrides) if not _is_setting(k)}
    settings = load_settings(Path(app.instance_path), **overrides)
    app.config.from_mapping(settings.flask_config())
    app.config.update(flask_overrides)
    if settings.PORTAL_ENV == "testing":
        app.config["TESTING"] = True

    from .logs import init_app as init_logs
    from .web import init_web

    _init_extensions(app)
    _register_blueprints(app)
    init_web(app)
    init_logs(app)
    _register_cli(app)
    return app


def _is_setting(key: str) -> bool:
    from dataclasses import fields

    from .config import Settings

    return key in {f.name for f in fields(Settings)}


def _init_extensions(app: Flask) -> None:
    from . import models  # noqa: F401  (every table known to the metadata and Alembic)
    from .extensions import csrf, db, htmx, limiter, login_manager, migrate

    db.init_app(app)
    from .database import init_database

    init_database(app)
    from .cache import watch_writes

    watch_writes()
    from .reports.rollups import keep_rollups

    keep_rollups()
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    from .users.session_cookie import init_login

    init_login(app)


def _register_blueprints(app: Flask) -> None:
    from .audits import block_views as _blocks  # noqa: F401 (blocked addresses join the bp)
    from .audits import check_views as _checks  # noqa: F401 (scheduled audits join the bp)
    from .audits import review_views  # noqa: F401 (access reviews join the audits bp)
    from .audits import security_views as _security  # noqa: F401 (joins the audits bp)
    from .audits import verify_views as _verify  # noqa: F401 (joins the audits bp)
    from .audits.block_guard import init_guard
    from .audits.views import bp as audits_bp
    from .changes import calendar_views, record_views  # noqa: F401 (their routes join bp)
    from .changes.admin_views import bp as change_admin_bp
    from .changes.views import bp as changes_bp
    from .ops.views import bp as ops_bp
    from .reports import dashboard_views, subscription_views  # noqa: F401 (routes join bp)
    from .reports.views import bp as reports_bp
    from .retention import views as _retention  # noqa: F401 (joins the audits bp)
    from .tickets.admin_views import bp as desk_admin_bp
    from .tickets.views import bp as tickets_bp
    from .users import bp as users_bp
    from .users import compromise_views  # noqa: F401 (its route joins the users bp)

    app.register_blueprint(users_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(tickets_bp)
    app.register_blueprint(desk_admin_bp)
    app.register_blueprint(changes_bp)
    app.register_blueprint(change_admin_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(audits_bp)
    # Blocked addresses are refused before any other check, static files included.
    init_guard(app)


def _register_cli(app: Flask) -> None:
    from .audits.cli import audits_cli
    from .ops.cli import ops_cli, scheduler_command, worker_command
    from .reports.cli import reports_cli
    from .retention.cli import retention_cli
    from .tickets.cli import tickets_cli
    from .users.cli import users_cli

    commands = (
        audits_cli,
        ops_cli,
        reports_cli,
        retention_cli,
        tickets_cli,
        users_cli,
        worker_command,
        scheduler_command,
    )
    for command in commands:
        app.cli.add_command(command)
