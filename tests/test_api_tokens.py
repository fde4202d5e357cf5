"""API tokens: created on the settings page or by ``flask tokens``, stored hashed, revocable."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select, text

from webchat.extensions import db
from webchat.models import ApiToken

from .conftest import csrf_token, post, sign_up
from .test_api import API

TOKEN = re.compile(r"wc_[A-Za-z0-9_-]{43}")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_cli_creates_lists_and_revokes_tokens(app, client, runner):
    sign_up(client)
    created = runner.invoke(args=["tokens", "create", "ada@example.com", "--name", "backup"])
    assert created.exit_code == 0, created.output
    (token,) = TOKEN.findall(created.stdout)
    assert app.test_client().get(f"{API}/models", headers=bearer(token)).status_code == 200

    listed = runner.invoke(args=["tokens", "list", "ada@example.com"])
    assert "backup" in listed.output and token[:11] in listed.output
    assert token not in listed.output  # only the prefix is known
    with app.app_context():
        row = db.session.scalars(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        dump = " ".join(str(r) for r in db.session.execute(text("SELECT * FROM api_tokens")))
        assert token not in dump
        token_id = row.id

    revoked = runner.invoke(args=["tokens", "revoke", str(token_id)])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert app.test_client().get(f"{API}/models", headers=bearer(token)).status_code == 401
    assert runner.invoke(args=["tokens", "create", "nobody@example.com"]).exit_code != 0
    assert runner.invoke(args=["tokens", "revoke", "999"]).exit_code != 0


def test_settings_page_creates_a_token_shown_once(app, user_client):
    page = user_client.get("/settings/")
    assert page.status_code == 200 and "API tokens" in page.get_data(as_text=True)
    response = user_client.post(
        "/settings/tokens", data={"name": "laptop", "csrf_token": csrf_token(user_client, "/")}
    )
    assert response.status_code == 201
    (token,) = set(TOKEN.findall(response.get_data(as_text=True)))
    again = user_client.get("/settings/").get_data(as_text=True)
    assert token not in again and token[:11] in again and "laptop" in again
    assert app.test_client().get(f"{API}/conversations", headers=bearer(token)).status_code == 200


def test_settings_htmx_gets_the_tokens_section_and_can_revoke(app, user_client):
    response = post(user_client, "/settings/tokens", {"name": "script"}, htmx=True)
    fragment = response.get_data(as_text=True)
    assert response.status_code == 201 and "<html" not in fragment and 'id="api-tokens"' in fragment
    (token,) = set(TOKEN.findall(fragment))
    with app.app_context():
        token_id = db.session.scalars(select(ApiToken.id)).one()
    revoked = post(user_client, f"/settings/tokens/{token_id}/revoke", htmx=True)
    assert revoked.status_code == 200 and "revoked" in revoked.get_data(as_text=True)
    assert app.test_client().get(f"{API}/models", headers=bearer(token)).status_code == 401
    too_long = post(user_client, "/settings/tokens", {"name": "x" * 101}, htmx=True)
    assert too_long.status_code == 400


def test_another_users_token_cannot_be_revoked(app, client):
    sign_up(client, "a@example.com")
    post(client, "/settings/tokens", {"name": "mine"})
    with app.app_context():
        token_id = db.session.scalars(select(ApiToken.id)).one()
    other = app.test_client()
    sign_up(other, "b@example.com")
    assert post(other, f"/settings/tokens/{token_id}/revoke").status_code == 404
    with app.app_context():
        assert db.session.get(ApiToken, token_id).revoked_at is None


def test_settings_needs_a_session(client):
    response = client.get("/settings/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
