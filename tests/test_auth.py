"""Accounts: sign up, sign in, sign out, the first admin, closed sign-up, the CLI."""

from __future__ import annotations

from sqlalchemy import select

from webchat.extensions import db
from webchat.models import User

from .conftest import csrf_token, post, sign_up


def test_pages_need_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_first_account_is_admin_and_second_is_not(app, client):
    sign_up(client, "first@example.com")
    other = app.test_client()
    sign_up(other, "second@example.com")
    with app.app_context():
        users = {u.email: u.is_admin for u in db.session.scalars(select(User))}
    assert users == {"first@example.com": True, "second@example.com": False}


def test_password_is_hashed(app, client):
    sign_up(client, "a@example.com", "correct horse")
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert "correct horse" not in user.password_hash
        assert user.check_password("correct horse") and not user.check_password("wrong horse")


def test_sign_in_and_out(app, client):
    sign_up(client, "a@example.com", "correct horse")
    assert post(client, "/logout").status_code == 302
    assert client.get("/").status_code == 302
    bad = client.post(
        "/login",
        data={"email": "a@example.com", "password": "nope", "csrf_token": csrf_token(client)},
    )
    assert bad.status_code == 400 and "Wrong email or password" in bad.get_data(as_text=True)
    good = client.post(
        "/login",
        data={
            "email": "A@example.com",
            "password": "correct horse",
            "csrf_token": csrf_token(client),
        },
    )
    assert good.status_code == 302
    assert client.get("/").status_code == 200


def test_duplicate_email_and_short_password_are_shown_inline(app, client):
    sign_up(client, "a@example.com")
    other = app.test_client()
    token = csrf_token(other, "/signup")
    dup = other.post(
        "/signup",
        data={
            "email": "a@example.com",
            "password": "x" * 10,
            "confirm": "x" * 10,
            "csrf_token": token,
        },
    )
    assert dup.status_code == 400 and "exists already" in dup.get_data(as_text=True)
    short = other.post(
        "/signup",
        data={
            "email": "b@example.com",
            "password": "short",
            "confirm": "short",
            "csrf_token": token,
        },
    )
    assert short.status_code == 400 and "at least 8" in short.get_data(as_text=True)


def test_closed_signup_still_allows_the_first_account(make_app):
    app = make_app(ALLOW_SIGNUP=False)
    client = app.test_client()
    sign_up(client, "admin@example.com")
    assert app.test_client().get("/signup").status_code == 403


def test_cli_users_create(app, runner):
    result = runner.invoke(args=["users", "create", "ops@example.com", "--password", "long enough"])
    assert result.exit_code == 0, result.output
    assert "created ops@example.com (admin)" in result.output
    again = runner.invoke(args=["users", "create", "ops@example.com", "--password", "long enough"])
    assert again.exit_code == 1 and "exists already" in again.output
    short = runner.invoke(args=["users", "create", "b@example.com", "--password", "short"])
    assert short.exit_code == 1 and "at least 8" in short.output
