"""Accounts: argon2 with rehash, password rules, change password and "sign out everywhere"
invalidate other sessions, disabled accounts (pages and tokens), reset links, deleting an account
leaves no row behind, the admin page and CLI, the audit log, and migration 0008."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from werkzeug.security import generate_password_hash

from webchat.extensions import db
from webchat.models import AuditEvent, User, utcnow

from .conftest import ROOT, csrf_token, post, sign_in, sign_up, wait_for_runs

PASSWORD = "correct horse"


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def user(app, email: str) -> User:
    with app.app_context():
        row = db.session.scalars(select(User).where(User.email == email)).one()
        db.session.expunge(row)
        return row


def events(app, email: str | None = None) -> list[str]:
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.id)
        if email:
            query = query.where(AuditEvent.user_id == user(app, email).id)
        return [e.event for e in db.session.scalars(query)]


def test_passwords_are_argon2_and_old_hashes_are_upgraded_at_sign_in(app, client):
    sign_up(client, "a@example.com")
    assert user(app, "a@example.com").password_hash.startswith("$argon2id$")
    with app.app_context():
        row = db.session.scalars(select(User)).one()
        row.password_hash = generate_password_hash(PASSWORD)  # werkzeug scrypt, as before
        db.session.commit()
    post(client, "/logout")
    assert sign_in(client, "a@example.com", "wrong horse").status_code == 400
    assert not user(app, "a@example.com").password_hash.startswith("$argon2")
    assert sign_in(client, "a@example.com").status_code == 302
    assert user(app, "a@example.com").password_hash.startswith("$argon2id$")


def test_common_short_and_own_email_passwords_are_refused(app, client):
    token = csrf_token(client, "/signup")
    for password, says in [
        ("password123", "too common"),
        ("Qwertyuiop", "too common"),
        ("short", "at least 8"),
        ("lovelace", "too common"),  # the email's own name
    ]:
        response = client.post(
            "/signup",
            data={"email": "lovelace@example.com", "password": password, "confirm": password,
                  "csrf_token": token},
        )  # fmt: skip
        assert response.status_code == 400 and says in response.get_data(as_text=True), password
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []


def change_password(client, current: str, new: str):
    return post(
        client,
        "/settings/password",
        {
            "current": current,
            "password": new,
            "confirm": new,
            "csrf_token": csrf_token(client, "/"),
        },
    )


def test_changing_the_password_signs_out_the_other_browsers(app, client):
    sign_up(client, "a@example.com")
    other, remembered = app.test_client(), app.test_client()
    assert sign_in(other, "a@example.com").status_code == 302
    assert sign_in(remembered, "a@example.com", remember=True).status_code == 302
    assert signed_in(other) and signed_in(remembered)

    wrong = change_password(client, "not it at all", "a new passphrase")
    assert wrong.status_code == 400 and "current password is wrong" in wrong.get_data(as_text=True)
    assert signed_in(other)  # a failed change changes nothing

    assert change_password(client, PASSWORD, "a new passphrase").status_code == 303
    assert signed_in(client)  # this browser stays signed in
    assert not signed_in(other) and not signed_in(remembered)  # session and remember cookie
    post(client, "/logout")
    assert sign_in(client, "a@example.com").status_code == 400
    assert sign_in(client, "a@example.com", "a new passphrase").status_code == 302
    assert "password_changed" in events(app, "a@example.com")


def test_sign_out_everywhere(app, client):
    sign_up(client, "a@example.com")
    other = app.test_client()
    sign_in(other, "a@example.com", remember=True)
    response = post(client, "/settings/sessions/revoke", {"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 303
    assert not signed_in(client) and not signed_in(other)
    assert sign_in(other, "a@example.com").status_code == 302  # signing in again works


def test_a_disabled_user_is_refused_at_once_by_page_and_token(app, client, runner):
    sign_up(client, "admin@example.com")
    member = app.test_client()
    sign_up(member, "b@example.com")
    with app.app_context():
        from webchat.api.tokens import create_token

        b = db.session.scalars(select(User).where(User.email == "b@example.com")).one()
        _row, token = create_token(b)
        db.session.commit()
        b_id = b.id
    bearer = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    assert api.get("/api/v1/conversations", headers=bearer).status_code == 200

    page = client.get("/admin/")
    assert page.status_code == 200 and "b@example.com" in page.get_data(as_text=True)
    assert member.get("/admin/").status_code == 404  # not an admin
    response = post(client, f"/admin/users/{b_id}/disable")
    assert response.status_code == 303

    assert not signed_in(member)
    assert api.get("/api/v1/conversations", headers=bearer).status_code == 401
    refused = sign_in(member, "b@example.com")
    assert refused.status_code == 400 and "disabled" in refused.get_data(as_text=True)

    result = runner.invoke(args=["users", "enable", "b@example.com"])
    assert result.exit_code == 0, result.output
    assert api.get("/api/v1/conversations", headers=bearer).status_code == 200
    assert sign_in(member, "b@example.com").status_code == 302

    result = runner.invoke(args=["users", "disable", "b@example.com"])
    assert result.exit_code == 0 and not signed_in(member)
    last_admin = runner.invoke(args=["users", "disable", "admin@example.com"])
    assert last_admin.exit_code != 0 and "last admin" in last_admin.output
    listed = runner.invoke(args=["users", "list"]).output
    assert re.search(r"b@example.com\t-\tdisabled\t0 conversations", listed)
    names = events(app, "b@example.com")
    assert names.count("account_disabled") == 2 and "account_enabled" in names


def test_reset_link_from_the_cli_works_once(app, client, runner):
    sign_up(client, "a@example.com")
    result = runner.invoke(args=["users", "reset-password", "a@example.com"])
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert link.startswith("http://127.0.0.1:5000/reset/")
    path = link.removeprefix("http://127.0.0.1:5000")
    other = app.test_client()
    assert other.get(path).status_code == 200
    token = csrf_token(other, path)
    common = other.post(path, data={"password": "password1", "confirm": "password1",
                                    "csrf_token": token})  # fmt: skip
    assert common.status_code == 400
    done = other.post(path, data={"password": "reset passphrase", "confirm": "reset passphrase",
                                  "csrf_token": token})  # fmt: skip
    assert done.status_code == 302
    assert not signed_in(client)  # the reset ends every session
    assert other.get(path).status_code == 404  # used
    assert sign_in(other, "a@example.com", "reset passphrase").status_code == 302
    assert app.test_client().get("/reset/not-a-token").status_code == 404


def test_deleting_an_account_leaves_no_row_behind(app, client):
    sign_up(client, "admin@example.com")
    post(client, "/c", {"content": "the admin's own"})
    gone = app.test_client()
    sign_up(gone, "gone@example.com")
    post(gone, "/c", {"content": "secret one"})
    post(gone, "/c", {"content": "secret two"})
    wait_for_runs(app)
    post(gone, "/settings/tokens", {"name": "script", "csrf_token": csrf_token(gone, "/")})
    gone_id = user(app, "gone@example.com").id

    typo = post(gone, "/settings/delete", {"confirmation": "gone@example.org",
                                           "password": PASSWORD})  # fmt: skip
    assert typo.status_code == 400 and "Type your email" in typo.get_data(as_text=True)
    wrong = post(gone, "/settings/delete", {"confirmation": "gone@example.com",
                                            "password": "wrong horse"})  # fmt: skip
    assert wrong.status_code == 400
    assert signed_in(gone)

    done = post(gone, "/settings/delete", {"confirmation": "Gone@Example.com",
                                           "password": PASSWORD})  # fmt: skip
    assert done.status_code == 303 and not signed_in(gone)
    with app.app_context():
        conn = db.session.connection()
        admin_conversations = {
            str(c) for c in conn.execute(text("SELECT id FROM conversations")).scalars()
        }
        for table in db.metadata.sorted_tables:
            rows = conn.execute(table.select()).mappings().all()
            for row in rows:
                values = " ".join(str(v) for v in row.values())
                assert "gone@example.com" not in values, table.name
                assert "secret" not in values, table.name
                for column in ("user_id", "actor_id"):
                    if column in row and row[column] is not None:
                        assert row[column] != gone_id, (table.name, column)
                if "conversation_id" in row:
                    assert str(row["conversation_id"]) in admin_conversations or str(
                        uuid.UUID(str(row["conversation_id"]))
                    ) in {str(uuid.UUID(c)) for c in admin_conversations}, table.name
        deleted = db.session.scalars(
            select(AuditEvent).where(AuditEvent.event == "account_deleted")
        ).one()
        assert deleted.user_id is None and deleted.detail == {"former_user_id": gone_id}
    assert signed_in(client)  # everyone else is untouched


def test_audit_log_records_sign_ins_and_is_shown_and_pruned(app, client, runner):
    sign_up(client, "a@example.com")
    post(client, "/logout")
    browser = {"User-Agent": "TestBrowser/1.0"}
    client.post("/login", data={"email": "a@example.com", "password": "nope nope",
                                "csrf_token": csrf_token(client)}, headers=browser)  # fmt: skip
    client.post("/login", data={"email": "nobody@example.com", "password": "nope nope",
                                "csrf_token": csrf_token(client)})  # fmt: skip
    assert sign_in(client, "a@example.com").status_code == 302
    post(client, "/settings/tokens", {"name": "backup", "csrf_token": csrf_token(client, "/")})
    client.get("/export?format=ndjson").get_data()
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        names = [r.event for r in rows]
        failed = [r for r in rows if r.event == "signin_failed"]
        assert failed[0].ip == "127.0.0.1" and failed[0].user_agent == "TestBrowser/1.0"
        assert failed[1].user_id is None and failed[1].detail == {"email": "nobody@example.com"}
    for name in ("signin_failed", "signin", "signout", "token_created", "export"):
        assert name in names, name

    settings = client.get("/settings/").get_data(as_text=True)
    assert "Recent activity" in settings and "signin failed" in settings
    admin = client.get("/admin/").get_data(as_text=True)
    assert "nobody@example.com" in admin  # the admin sees everyone's, failed emails included

    with app.app_context():
        old = db.session.scalars(select(AuditEvent)).first()
        old.created_at = utcnow() - timedelta(days=400)
        db.session.commit()
    result = runner.invoke(args=["audit", "prune"])
    assert result.exit_code == 0 and "pruned 1 audit events" in result.output
    assert len(events(app)) == len(names) - 1


def test_migration_0008_from_0007_with_data(make_app):
    from flask_migrate import downgrade, upgrade

    from webchat.auth.views import load_user

    app = make_app()
    with app.app_context():
        downgrade(directory=str(ROOT / "migrations"), revision="0007")
        conn = db.session.connection()
        conn.execute(
            text(
                "INSERT INTO users (email, password_hash, is_admin, created_at) "
                "VALUES ('old@example.com', :h, true, :t)"
            ),
            {"h": generate_password_hash(PASSWORD), "t": utcnow().replace(tzinfo=None)},
        )
        uid = conn.execute(text("SELECT id FROM users")).scalar()
        cid, mid = uuid.uuid4(), uuid.uuid4()
        key = (lambda u: u.hex) if db.engine.name == "sqlite" else (lambda u: u)
        now = utcnow().replace(tzinfo=None)
        conn.execute(
            text(
                "INSERT INTO conversations (id, user_id, title, model, metadata, pinned, "
                "created_at, updated_at) VALUES (:id, :u, 'Old', 'demo/echo', '{}', false, :t, :t)"
            ),
            {"id": key(cid), "u": uid, "t": now},
        )
        old_html = '<table><tr><th style="text-align:right">n</th></tr></table>'
        conn.execute(
            text(
                "INSERT INTO messages (id, conversation_id, role, content, content_html, status, "
                "metadata, depth, created_at, updated_at) VALUES (:id, :c, 'assistant', "
                "'| n |', :h, 'complete', '{}', 0, :t, :t)"
            ),
            {"id": key(mid), "c": key(cid), "h": old_html, "t": now},
        )
        db.session.commit()
        upgrade(directory=str(ROOT / "migrations"))
        html = db.session.execute(text("SELECT content_html FROM messages")).scalar()
        assert html == '<table><tr><th class="align-right">n</th></tr></table>'
        old = db.session.scalars(select(User)).one()
        assert old.session_generation == 0 and old.disabled_at is None and old.is_active
        assert load_user(str(old.id)) is old  # a session from before the upgrade stays valid
        assert load_user(f"{old.id}:0") is old and load_user(f"{old.id}:1") is None
        db.session.rollback()
    client = app.test_client()
    assert sign_in(client, "old@example.com").status_code == 302
    assert user(app, "old@example.com").password_hash.startswith("$argon2")
    with app.app_context():  # and back down, keeping the accounts
        downgrade(directory=str(ROOT / "migrations"), revision="0007")
        assert db.session.execute(text("SELECT count(*) FROM users")).scalar() == 1
        html = db.session.execute(text("SELECT content_html FROM messages")).scalar()
        assert html == old_html
        db.session.commit()
        upgrade(directory=str(ROOT / "migrations"))


GEVENT_CHECK = """
from gevent import monkey
monkey.patch_all()
import time, gevent
from webchat.models import User
gaps = []
def tick():
    last = time.perf_counter()
    while True:
        gevent.sleep(0.005)
        now = time.perf_counter(); gaps.append(now - last); last = now
ticker = gevent.spawn(tick)
gevent.sleep(0.05)
user = User(); user.set_password("correct horse"); assert user.check_password("correct horse")
gevent.sleep(0.03)  # the ticker wakes and records its last gap
ticker.kill()
print(max(gaps))
"""


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_hashing_does_not_stall_a_gevent_worker(database):
    """Under gunicorn's gevent worker, argon2 runs in gevent's thread pool: other greenlets
    (open streams) keep running while a password is hashed and checked."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", GEVENT_CHECK], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert float(done.stdout.strip()) < 0.15  # a hash alone takes ~0.1-0.3 s here
