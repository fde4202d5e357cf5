"""Organising conversations: rename, pin, archive, Trash (restore, purge, retention), and titles
generated in the background by a real model."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, text

from webchat.conversations import titles
from webchat.extensions import db
from webchat.models import Conversation, Message, Run, User, utcnow
from webchat.providers import register
from webchat.providers.base import Finish, TextDelta
from webchat.search import search

from .conftest import post, sign_up, wait_for_runs
from .fakes.queued import QueuedProvider
from .test_conversations import start_conversation


def _get(app, cid) -> Conversation:
    with app.app_context():
        conversation = db.session.get(Conversation, uuid.UUID(cid))
        db.session.expunge_all()
        return conversation


def _sidebar_titles(client) -> list[str]:
    html = client.get("/").get_data(as_text=True)
    nav = html.split('id="conversation-list"', 1)[1].split("</nav>", 1)[0]
    return [t.split("<", 1)[0] for t in nav.split('<span class="title">')[1:]]


def test_rename_inline(app, user_client):
    cid = start_conversation(user_client, "first words here")
    wait_for_runs(app)
    response = post(user_client, f"/c/{cid}/rename", {"title": "  Holiday   plans "})
    assert response.status_code == 303 and _get(app, cid).title == "Holiday plans"
    fragment = post(user_client, f"/c/{cid}/rename", {"title": "Trip"}, htmx=True)
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and 'value="Trip"' in html
    assert f"#conversation-list a[href='/c/{cid}'] .title" in html  # the sidebar entry follows
    assert _sidebar_titles(user_client) == ["Trip"]
    bad = post(user_client, f"/c/{cid}/rename", {"title": "   "}, htmx=True)
    assert bad.status_code == 400 and "at least one character" in bad.get_data(as_text=True)
    assert post(user_client, f"/c/{cid}/rename", {"title": "x" * 201}).status_code == 400
    assert _get(app, cid).title == "Trip"
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert 'class="title-form"' in page and 'value="Trip"' in page


def test_pin_puts_first_and_archive_moves_out_of_sidebar(app, user_client):
    a = start_conversation(user_client, "alpha")
    wait_for_runs(app)  # so the order of activity is certain
    b = start_conversation(user_client, "bravo")
    wait_for_runs(app)
    assert _sidebar_titles(user_client) == ["bravo", "alpha"]
    assert post(user_client, f"/c/{a}/pin", {"pinned": "1"}).status_code == 303
    assert _sidebar_titles(user_client) == ["alpha", "bravo"] and _get(app, a).pinned
    response = post(user_client, f"/c/{a}/pin", {"pinned": "0"}, htmx=True)
    assert response.headers["HX-Redirect"] == f"/c/{a}"
    assert _sidebar_titles(user_client) == ["bravo", "alpha"]

    post(user_client, f"/c/{b}/archive", {"archived": "1"})
    assert _sidebar_titles(user_client) == ["alpha"]
    archived = user_client.get("/archived").get_data(as_text=True)
    assert "bravo" in archived and "alpha" not in archived.split('class="rows"')[1]
    assert user_client.get(f"/c/{b}").status_code == 200  # archived is still readable
    assert search_titles(app, "bravo")  # and searchable
    row = post(user_client, f"/c/{b}/archive", {"archived": "0", "next": "/archived"}, htmx=True)
    assert row.status_code == 200 and row.get_data(as_text=True) == ""  # the row leaves
    assert _sidebar_titles(user_client) == ["bravo", "alpha"]


def search_titles(app, q) -> list[str]:
    with app.app_context():
        user = db.session.scalars(select(User)).first()
        return [h.conversation_title for h in search(user, q).items]


def test_trash_restore_and_purge(app, user_client):
    cid = start_conversation(user_client, "a walrus in the garden")
    wait_for_runs(app)
    keep = start_conversation(user_client, "another walrus")
    wait_for_runs(app)
    response = post(user_client, f"/c/{cid}/trash", htmx=True)
    assert response.headers["HX-Redirect"] == "/"
    assert _sidebar_titles(user_client) == ["another walrus"]
    assert user_client.get(f"/c/{cid}").status_code == 404  # in Trash: not found
    assert post(user_client, f"/c/{cid}/rename", {"title": "x"}).status_code == 404
    assert set(search_titles(app, "walrus")) == {"another walrus"}
    trash = user_client.get("/trash").get_data(as_text=True)
    assert "a walrus in the garden" in trash and "gone after" in trash

    assert post(user_client, f"/trash/{keep}/restore").status_code == 404  # not in Trash
    row = post(user_client, f"/trash/{cid}/restore", htmx=True)
    assert row.status_code == 200 and row.get_data(as_text=True) == ""
    assert sorted(_sidebar_titles(user_client)) == ["a walrus in the garden", "another walrus"]
    assert set(search_titles(app, "walrus")) == {"a walrus in the garden", "another walrus"}

    post(user_client, f"/c/{cid}/trash")
    with app.app_context():
        counts = _row_counts(cid)
    assert counts == {"messages": 2, "runs": 1, "search_docs": 3}
    assert post(user_client, f"/trash/{cid}/purge").status_code == 303
    with app.app_context():
        assert db.session.get(Conversation, uuid.UUID(cid)) is None
        assert _row_counts(cid) == {"messages": 0, "runs": 0, "search_docs": 0}
        if db.engine.dialect.name == "sqlite":
            fts = db.session.execute(text("SELECT count(*) FROM search_fts")).scalar()
            docs = db.session.execute(text("SELECT count(*) FROM search_docs")).scalar()
            assert fts == docs == 3  # only the kept conversation's title and two messages
    assert post(user_client, f"/trash/{cid}/purge").status_code == 404


def _row_counts(cid: str) -> dict[str, int]:
    c = uuid.UUID(cid)
    count = db.session.execute
    return {
        "messages": count(select(func.count()).where(Message.conversation_id == c)).scalar(),
        "runs": count(select(func.count()).where(Run.conversation_id == c)).scalar(),
        "search_docs": count(
            text("SELECT count(*) FROM search_docs WHERE conversation_id = :c"),
            {"c": c.hex if db.engine.dialect.name == "sqlite" else c},
        ).scalar(),
    }


def test_trash_retention_purges_expired(make_app):
    app = make_app(TRASH_RETENTION_DAYS=7)
    client = app.test_client()
    sign_up(client)
    ids = []
    for title in ("old news", "recent news", "fresh news"):
        ids.append(start_conversation(client, title))
        wait_for_runs(app)  # one writer at a time
    old, recent, fresh = ids
    with app.app_context():
        for cid, days in ((old, 8), (recent, 3)):
            conversation = db.session.get(Conversation, uuid.UUID(cid))
            conversation.deleted_at = utcnow() - timedelta(days=days)
        db.session.commit()
    trash = client.get("/trash").get_data(as_text=True)
    assert "recent news" in trash and "old news" not in trash  # expired ones are not listed
    result = app.test_cli_runner().invoke(args=["trash", "purge"])
    assert result.exit_code == 0 and "purged 1 conversation from Trash" in result.output
    assert _get(app, old) is None and _get(app, recent) is not None
    # moving something to Trash purges what expired meanwhile, opportunistically
    with app.app_context():
        db.session.get(Conversation, uuid.UUID(recent)).deleted_at = utcnow() - timedelta(days=9)
        db.session.commit()
    post(client, f"/c/{fresh}/trash")
    assert _get(app, recent) is None and _get(app, fresh).deleted_at is not None
    post(client, "/trash/empty")
    assert _get(app, fresh) is None


def test_another_users_conversation_is_404(app, client):
    sign_up(client, "ada@example.com")
    cid = start_conversation(client, "ada's")
    wait_for_runs(app)
    other = app.test_client()
    sign_up(other, "bob@example.com")
    for path in ("rename", "pin", "archive", "trash"):
        assert post(other, f"/c/{cid}/{path}", {"title": "mine"}).status_code == 404
    post(client, f"/c/{cid}/trash")
    for path in ("restore", "purge"):
        assert post(other, f"/trash/{cid}/{path}").status_code == 404
    post(other, "/trash/empty")
    assert _get(app, cid) is not None


def test_real_model_titles_in_background(make_app):
    app = make_app(TITLE_GENERATION=True)
    user_client = app.test_client()
    sign_up(user_client)
    fake = QueuedProvider()
    register(app, fake)
    fake.queue(TextDelta("Sure, here is how to bake bread."), Finish("stop"))  # the reply
    fake.queue(TextDelta('"Baking Sourdough'), TextDelta(' Bread."\nextra'), Finish("stop"))
    form = {"content": "how do I bake sourdough?", "model": "fake/model"}
    response = post(user_client, "/c", form)
    cid = response.headers["Location"].rsplit("/", 1)[1]
    assert _get(app, cid).title == "how do I bake sourdough?"  # at once, from the message
    wait_for_runs(app)
    titles.wait(app)
    assert _get(app, cid).title == "Baking Sourdough Bread"
    assert app.extensions[titles.THREADS] == []  # the thread took itself off the list
    reply_request, title_request = fake.requests
    assert reply_request[-1].content == "how do I bake sourdough?"
    assert title_request[0].role == "system" and "title" in title_request[0].content


def test_a_rename_wins_over_the_generated_title(make_app):
    app = make_app(TITLE_GENERATION=True)
    user_client = app.test_client()
    sign_up(user_client)
    fake = QueuedProvider()
    register(app, fake)
    fake.queue(0.3, TextDelta("reply"), Finish("stop"))  # the title waits for this reply
    fake.queue(TextDelta("Generated"), Finish("stop"))
    response = post(user_client, "/c", {"content": "hello", "model": "fake/model"})
    cid = response.headers["Location"].rsplit("/", 1)[1]
    post(user_client, f"/c/{cid}/rename", {"title": "Mine"})
    wait_for_runs(app)
    titles.wait(app)
    assert _get(app, cid).title == "Mine"
    assert len(fake.requests) == 2  # the model was asked, and its title not taken


def test_demo_model_gets_no_generated_title(make_app):
    app = make_app(TITLE_GENERATION=True)
    user_client = app.test_client()
    sign_up(user_client)
    register(app, QueuedProvider())
    cid = start_conversation(user_client, "plain demo")
    wait_for_runs(app)
    assert _get(app, cid).title == "plain demo"
    assert titles.THREADS not in app.extensions  # no title thread was ever started
    with app.app_context():
        assert not titles.wanted("demo/echo") and titles.wanted("fake/model")
        assert not titles.wanted("nowhere/model")
        app.config["TITLE_GENERATION"] = False
        assert not titles.wanted("fake/model")
