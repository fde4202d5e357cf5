"""webchat: a Flask server-rendered chat web app that stores every message as it streams."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: configuration, extensions, blueprints and CLI commands.

    ``test_config`` (tests only) replaces the instance config file and the environment.
    """
    if test_config is None:
        load_dotenv(ROOT / ".env")
    app = Flask(
        __name__,
        instance_path=(test_config or {}).get("INSTANCE_PATH")
        or os.environ.get("WEBCHAT_INSTANCE_PATH")
        or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    from . import (
        assets,
        cli,
        compression,
        config,
        errors,
        limits,
        logs,
        providers,
        security,
        templating,
    )
    from . import db as dbsetup
    from .extensions import csrf, db, htmx, login_manager, migrate
    from .streaming import notify, runs

    config.load_config(app, test_config)
    security.init_app(app)
    compression.init_app(app)
    assets.init_app(app)
    logs.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to see your conversations."
    csrf.init_app(app)
    htmx.init_app(app)
    with app.app_context():
        dbsetup.configure_engine(db.engine)
    providers.init_app(app)
    notify.init_app(app)
    errors.init_app(app)
    templating.init_app(app)

    from . import api, gateway, ops
    from .admin import bp as admin_bp
    from .auth import bp as auth_bp
    from .conversations import bp as conversations_bp
    from .conversations.project_views import bp as projects_bp
    from .files.views import bp as files_bp
    from .porting import bp as porting_bp
    from .search import bp as search_bp
    from .settings import bp as settings_bp
    from .shares.views import bp as shares_bp
    from .usage.views import bp as usage_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(conversations_bp)
    app.register_blueprint(projects_bp)
    app.register_blueprint(shares_bp)
    app.register_blueprint(files_bp)
    app.register_blueprint(search_bp)
    app.register_blueprint(porting_bp)
    api.init_app(app)
    gateway.init_app(app)
    app.register_blueprint(settings_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(usage_bp)
    ops.init_app(app)
    limits.init_app(app)
    cli.init_app(app)

    if app.config["REAPER_INTERVAL_MS"]:
        _start_reaper_once(app, runs.start_reaper)
    return app


def _start_reaper_once(app: Flask, start) -> None:
    """Start this process's reaper at its first request (after gunicorn forks, not before)."""
    started: dict[str, int] = {}

    @app.before_request
    def _ensure_reaper() -> None:
        if started.get("pid") != os.getpid():
            started["pid"] = os.getpid()
            start(app)
