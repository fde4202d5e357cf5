"""The first migration and the models: tables, indexes, cascades, UTC timestamps."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import delete, func, inspect, select

from webchat.extensions import db
from webchat.models import Conversation, Message, Run, User

from .conftest import wait_for_runs
from .test_conversations import start_conversation


def test_upgrade_from_empty_creates_tables_and_indexes(app):
    with app.app_context():
        inspector = inspect(db.engine)
        tables = set(inspector.get_table_names())
        assert {"users", "conversations", "messages", "runs", "api_tokens"} <= tables
        indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("messages")}
        assert indexes["ix_messages_conversation_created"] == [
            "conversation_id",
            "created_at",
            "id",
        ]
        columns = {c["name"] for c in inspector.get_columns("messages")}
        assert {
            "id", "conversation_id", "parent_id", "role", "content", "tool_name", "tool_call",
            "tool_result", "status", "error", "metadata", "created_at", "updated_at",
        } <= columns  # fmt: skip
        fks = {fk["referred_table"] for fk in inspector.get_foreign_keys("messages")}
        assert {"conversations", "messages", "runs"} <= fks


def test_hard_delete_of_a_conversation_cascades(app, user_client):
    cid = start_conversation(user_client)
    wait_for_runs(app)
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id))) == 2
        db.session.execute(delete(Conversation))
        db.session.commit()
        assert db.session.scalar(select(func.count(Message.id))) == 0
        assert db.session.scalar(select(func.count(Run.id))) == 0
    assert cid


def test_timestamps_are_aware_utc(app, user_client):
    start_conversation(user_client)
    wait_for_runs(app)
    with app.app_context():
        message = db.session.scalars(select(Message)).first()
        assert message.created_at.tzinfo is UTC
        user = db.session.scalars(select(User)).first()
        assert user.created_at.tzinfo is UTC


def test_naive_datetimes_are_refused(app):
    from datetime import datetime

    with app.app_context():
        db.session.add(User(email="x@example.com", password_hash="x", created_at=datetime.now()))
        with pytest.raises(Exception, match="naive datetime"):
            db.session.flush()
        db.session.rollback()
