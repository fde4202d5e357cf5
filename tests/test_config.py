"""Configuration: defaults, instance folder, WEBCHAT_* and DATABASE_URL, the secret key."""

from __future__ import annotations

from webchat import create_app
from webchat.config import normalize_database_url


def test_database_url_is_normalized_for_psycopg3():
    assert normalize_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_env_then_plain_database_url(monkeypatch, tmp_path):
    monkeypatch.setenv("WEBCHAT_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("WEBCHAT_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/plain.db")
    assert create_app().config["SQLALCHEMY_DATABASE_URI"].endswith("plain.db")
    monkeypatch.setenv("WEBCHAT_DATABASE_URL", f"sqlite:///{tmp_path}/prefixed.db")
    assert create_app().config["SQLALCHEMY_DATABASE_URI"].endswith("prefixed.db")


def test_default_database_is_sqlite_in_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("WEBCHAT_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("WEBCHAT_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    uri = create_app().config["SQLALCHEMY_DATABASE_URI"]
    assert uri == f"sqlite:///{tmp_path / 'webchat.sqlite3'}"


def test_secret_key_is_generated_once_into_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("WEBCHAT_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("WEBCHAT_SECRET_KEY", raising=False)
    first = create_app().config["SECRET_KEY"]
    assert len(first) == 64 and (tmp_path / "secret_key").read_text() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert create_app().config["SECRET_KEY"] == first
    monkeypatch.setenv("WEBCHAT_SECRET_KEY", "from-env")
    assert create_app().config["SECRET_KEY"] == "from-env"


def test_instance_config_file_is_read(monkeypatch, tmp_path):
    monkeypatch.setenv("WEBCHAT_INSTANCE_PATH", str(tmp_path))
    (tmp_path / "config.py").write_text("MAX_MESSAGE_CHARS = 123\n")
    assert create_app().config["MAX_MESSAGE_CHARS"] == 123
    monkeypatch.setenv("WEBCHAT_MAX_MESSAGE_CHARS", "456")
    assert create_app().config["MAX_MESSAGE_CHARS"] == 456
