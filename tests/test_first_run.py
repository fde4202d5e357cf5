"""First run: with no account in the database every page leads to "Create the admin account";
afterwards sign-up follows ``ALLOW_SIGNUP``."""

from __future__ import annotations

from sqlalchemy import select

from webchat.extensions import db
from webchat.models import User

from .conftest import sign_up


def _follow(client, path: str) -> tuple[str, str]:
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 200
    return response.request.path, response.get_data(as_text=True)


def test_a_fresh_install_opens_on_the_admin_account(client):
    for path in ("/", "/login", "/search", "/settings/", "/usage"):
        where, html = _follow(client, path)
        assert where == "/signup", (path, where)
        assert "<h1>Create the admin account</h1>" in html
        assert "this first account is the\n    admin" in html
        assert "Have an account?" not in html


def test_after_the_admin_sign_in_and_sign_up_are_as_before(app, client):
    sign_up(client, "admin@example.com")
    with app.app_context():
        assert db.session.scalars(select(User.is_admin)).one() is True
    other = app.test_client()
    where, html = _follow(other, "/")
    assert where == "/login" and "<h1>Sign in</h1>" in html and "Create an account" in html
    where, html = _follow(other, "/signup")
    assert "<h1>Create an account</h1>" in html and "admin" not in html.split("<h1>")[1]


def test_closed_sign_up_still_takes_the_first_account(make_app):
    app = make_app(ALLOW_SIGNUP=False)
    client = app.test_client()
    where, html = _follow(client, "/")
    assert where == "/signup" and "WEBCHAT_ALLOW_SIGNUP=false" in html
    sign_up(client, "admin@example.com")
    other = app.test_client()
    where, html = _follow(other, "/")
    assert where == "/login" and "Create an account" not in html
    assert other.get("/signup").status_code == 403
