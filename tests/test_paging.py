"""History at any length: paging messages (API and page) and the sidebar, by keyset cursors."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from webchat import tree
from webchat.auth import services as accounts
from webchat.extensions import db
from webchat.models import Conversation, Message, Role, Run, Status, new_id, utcnow
from webchat.rendering import render_markdown
from webchat.seed import seed
from webchat.streaming.store import next_timestamp

from .conftest import post, sign_up, wait_for_runs
from .test_api import Api, api_token

ARTICLE_ID = re.compile(r'<article class="msg [a-z]+" id="m-([0-9a-f-]{36})"')
OLDER = re.compile(r'class="history-more older" href="[^"]*before=([0-9a-f-]{36})"')
NEWER = re.compile(r'class="history-more newer" href="[^"]*after=([0-9a-f-]{36})"')


def user_id(app, email: str) -> int:
    with app.app_context():
        return accounts.find_user(email).id


def seeded(app, email: str, messages: int, conversations: int = 1) -> list[str]:
    """Seed conversations of the account ``email``; returns their ids."""
    with app.app_context():
        user = accounts.find_user(email)
        return [str(c) for c in seed(user, messages=messages, conversations=conversations)]


def ids_of(app, conversation_id: str) -> list[str]:
    """Every message id of the conversation, oldest first, as the database has them now."""
    with app.app_context():
        return [
            str(i)
            for i in db.session.scalars(
                select(Message.id)
                .where(Message.conversation_id == uuid.UUID(conversation_id))
                .order_by(Message.created_at, Message.id)
            )
        ]


def append(app, conversation_id: str, count: int, run: bool = False) -> list[str]:
    """Add ``count`` complete messages after the newest (all of one run when ``run``)."""
    with app.app_context():
        cid = uuid.UUID(conversation_id)
        last = db.session.scalars(
            select(Message)
            .where(Message.conversation_id == cid)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(1)
        ).first()
        at, parent = (last.created_at, last.id) if last else (None, None)
        run_id = None
        if run:
            run_id = new_id()
            db.session.add(
                Run(id=run_id, conversation_id=cid, model="demo/echo", status="complete")
            )
            db.session.flush()  # the run before its messages (the two refer to each other)
        added = []
        parent_row = db.session.get(Message, parent) if parent else None
        for i in range(count):
            at = next_timestamp(at)
            role = Role.ASSISTANT if run or i % 2 else Role.USER
            text = f"message {i} **bold**"
            message = Message(
                id=new_id(),
                conversation_id=cid,
                parent_id=parent,
                run_id=run_id,
                role=role,
                content=text,
                content_html=render_markdown(text),
                status=Status.COMPLETE,
                created_at=at,
                updated_at=at,
            )
            tree.attach(message, parent_row)
            db.session.add(message)
            db.session.flush()
            tree.advance(cid, parent, message.id)
            parent, parent_row = message.id, message
            added.append(str(message.id))
        db.session.commit()
        return added


@pytest.fixture
def api(app):
    return Api(app, api_token(app))


def test_walking_forwards_while_messages_arrive_sees_each_once(app, api):
    (cid,) = seeded(app, "ada@example.com", 137)
    seen: list[str] = []
    cursor = None
    arrivals = 0
    while True:
        query = {"limit": 25, **({"after": cursor} if cursor else {})}
        page = api.get(f"/conversations/{cid}/messages", query_string=query).get_json()
        seen += [m["id"] for m in page["items"]]
        if arrivals < 6:  # the conversation goes on while the client reads it
            append(app, cid, 7)
            arrivals += 1
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        assert page["next_cursor"] == page["items"][-1]["id"]
        cursor = page["next_cursor"]
    assert seen == ids_of(app, cid)  # no gap, no repeat, in order, the new ones included
    assert len(seen) == 137 + 6 * 7


def test_walking_backwards_while_messages_arrive_sees_each_once(app, api):
    (cid,) = seeded(app, "ada@example.com", 130)
    before = ids_of(app, cid)
    newest = api.get(f"/conversations/{cid}").get_json()
    seen = [m["id"] for m in newest["messages"]]
    cursor = newest["next_cursor"]
    assert newest["has_more"] and cursor == seen[0]
    arrived = 0
    while cursor:
        arrived += len(append(app, cid, 3))  # new messages land after everything being walked
        page = api.get(
            f"/conversations/{cid}/messages", query_string={"before": cursor, "limit": 40}
        ).get_json()
        assert len(page["items"]) <= 40
        seen = [m["id"] for m in page["items"]] + seen
        cursor = page["next_cursor"]
        assert (cursor is None) == (not page["has_more"])
    assert seen == before
    assert arrived == 6 and page["total"] == len(ids_of(app, cid)) == 130 + arrived


def test_offset_and_cursor_pages_agree(app, api):
    (cid,) = seeded(app, "ada@example.com", 101)
    by_offset, by_cursor = [], []
    for offset in range(0, 101, 20):
        page = api.get(
            f"/conversations/{cid}/messages", query_string={"limit": 20, "offset": offset}
        ).get_json()
        assert (page["offset"], page["limit"], page["total"]) == (offset, 20, 101)
        assert page["has_more"] == (offset + 20 < 101)
        by_offset.append([m["id"] for m in page["items"]])
    cursor = None
    while True:
        query = {"limit": 20, **({"after": cursor} if cursor else {})}
        page = api.get(f"/conversations/{cid}/messages", query_string=query).get_json()
        by_cursor.append([m["id"] for m in page["items"]])
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert by_offset == by_cursor
    assert sum(by_offset, []) == ids_of(app, cid)
    # a cursor with an offset skips from the cursor; before and after together give a range
    ids = ids_of(app, cid)
    skip = api.get(
        f"/conversations/{cid}/messages", query_string={"after": ids[9], "offset": 5, "limit": 3}
    ).get_json()
    assert [m["id"] for m in skip["items"]] == ids[15:18]
    between = api.get(
        f"/conversations/{cid}/messages",
        query_string={"after": ids[9], "before": ids[14], "limit": 50},
    ).get_json()
    assert [m["id"] for m in between["items"]] == ids[10:14] and not between["has_more"]
    back = api.get(
        f"/conversations/{cid}/messages", query_string={"before": ids[50], "offset": 2, "limit": 4}
    ).get_json()
    assert [m["id"] for m in back["items"]] == ids[44:48] and back["next_cursor"] == ids[44]


def test_bad_page_parameters_are_400(app, api):
    (cid,) = seeded(app, "ada@example.com", 3)
    for query, field in [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"before": "not-an-id"}, "before"),
        ({"colour": "red"}, "colour"),
    ]:
        response = api.get(f"/conversations/{cid}/messages", query_string=query)
        assert response.status_code == 400, query
        assert field in response.get_json()["error"]["details"]["fields"], query
    # a cursor that is no message of this conversation is an unknown id
    unknown = api.get(f"/conversations/{cid}/messages", query_string={"after": str(uuid.uuid4())})
    assert unknown.status_code == 404
    assert "after" in unknown.get_json()["error"]["details"]["fields"]


def test_page_renders_only_the_newest_window(app, user_client):
    (cid,) = seeded(app, "ada@example.com", 120)
    ids = ids_of(app, cid)
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert ARTICLE_ID.findall(page) == ids[-50:]
    assert OLDER.findall(page) == [ids[-50]] and not NEWER.findall(page)
    assert 'hx-trigger="intersect once, click"' in page


def test_scrolling_up_loads_every_older_window_once(app, user_client):
    (cid,) = seeded(app, "ada@example.com", 173)
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    seen = ARTICLE_ID.findall(page)
    older = OLDER.findall(page)
    while older:
        response = user_client.get(
            f"/c/{cid}", query_string={"before": older[0]}, headers={"HX-Request": "true"}
        )
        assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
        fragment = response.get_data(as_text=True)
        assert "<html" not in fragment and "conversation-list" not in fragment
        seen = ARTICLE_ID.findall(fragment) + seen
        assert not NEWER.findall(fragment)
        older = OLDER.findall(fragment)
    assert seen == ids_of(app, cid)
    # without htmx the same URL is a whole page (the link works without JavaScript)
    full = user_client.get(f"/c/{cid}", query_string={"before": seen[60]}).get_data(as_text=True)
    assert "<html" in full and ARTICLE_ID.findall(full) == seen[10:60]
    assert NEWER.findall(full) == [seen[59]]


def test_a_link_to_a_message_opens_its_window(app, user_client):
    (cid,) = seeded(app, "ada@example.com", 120)
    ids = ids_of(app, cid)
    page = user_client.get(f"/c/{cid}", query_string={"around": ids[60]}).get_data(as_text=True)
    shown = ARTICLE_ID.findall(page)
    assert ids[60] in shown and shown == ids[35:85]
    assert OLDER.findall(page) == [ids[35]] and NEWER.findall(page) == [ids[84]]
    newer = user_client.get(
        f"/c/{cid}", query_string={"after": ids[84]}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert ARTICLE_ID.findall(newer) == ids[85:] and not NEWER.findall(newer)
    missing = user_client.get(f"/c/{cid}", query_string={"around": str(uuid.uuid4())})
    assert missing.status_code == 404


def test_a_reply_is_never_cut_between_windows(make_app):
    app = make_app(PAGE_SIZE=5)
    client = app.test_client()
    sign_up(client)
    (cid,) = seeded(app, "ada@example.com", 3)
    run = append(app, cid, 4, run=True)  # one reply of four messages (text, tools…)
    tail = append(app, cid, 2)
    page = client.get(f"/c/{cid}").get_data(as_text=True)
    # the newest 5 would start inside the reply; the window widens to the whole of it
    assert ARTICLE_ID.findall(page) == [run[0], *tail]
    assert all(f'id="m-{m}"' not in page for m in run[1:])
    ids = ids_of(app, cid)
    assert OLDER.findall(page) == [run[0]]
    older = client.get(
        f"/c/{cid}", query_string={"before": run[0]}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert ARTICLE_ID.findall(older) == ids[:3] and not OLDER.findall(older)


def test_page_views_do_no_markdown_work(app, user_client, monkeypatch):
    (cid,) = seeded(app, "ada@example.com", 60)
    # and a real reply: store.finish renders its HTML once, when it ends
    post(user_client, f"/c/{cid}/messages", {"content": "and *one* more"})
    wait_for_runs(app)

    def refuse(text: str) -> str:
        raise AssertionError("a page view rendered Markdown")

    monkeypatch.setattr("webchat.templating.render_markdown", refuse)
    page = user_client.get(f"/c/{cid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    with app.app_context():
        stored = db.session.scalars(
            select(Message.content_html).where(
                Message.conversation_id == uuid.UUID(cid), Message.role == Role.ASSISTANT
            )
        ).all()
    assert stored and all(h for h in stored)
    assert sum(h.strip() in html for h in stored) >= 25  # the window's replies, as stored
    older = ids_of(app, cid)[-50]
    fragment = user_client.get(
        f"/c/{cid}", query_string={"before": older}, headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 200


def test_sidebar_pages_through_every_conversation(make_app):
    app = make_app(SIDEBAR_PAGE_SIZE=3)
    client = app.test_client()
    sign_up(client)
    ids = seeded(app, "ada@example.com", 2, conversations=8)  # newest activity last
    with app.app_context():
        pinned = db.session.get(Conversation, uuid.UUID(ids[2]))
        pinned.pinned = True
        archived = db.session.get(Conversation, uuid.UUID(ids[5]))
        archived.archived_at = utcnow()
        db.session.commit()
    link = re.compile(r'class="conversation-link[^"]*"\s+href="/c/([0-9a-f-]{36})"')
    more = re.compile(r'class="sidebar-more[^"]*" href="/\?cursor=([^"]+)"')
    page = client.get("/").get_data(as_text=True)
    seen = link.findall(page)
    assert len(seen) == 3
    cursor = more.findall(page)
    while cursor:
        response = client.get(
            "/", query_string={"cursor": cursor[0]}, headers={"HX-Request": "true"}
        )
        fragment = response.get_data(as_text=True)
        assert "<html" not in fragment
        seen += link.findall(fragment)
        cursor = more.findall(fragment)
    expected = [ids[2]] + [c for c in reversed(ids) if c not in (ids[2], ids[5])]
    assert seen == expected
    assert (
        client.get("/", query_string={"cursor": "junk"}, headers={"HX-Request": "true"}).status_code
        == 400
    )


def test_every_page_with_a_sidebar_links_to_more_conversations(make_app):
    """Search, import/export, settings, Archived and Trash show the same paged sidebar."""
    app = make_app(SIDEBAR_PAGE_SIZE=3)
    client = app.test_client()
    sign_up(client)
    for n in range(4):
        assert post(client, "/c", {"content": f"conversation {n}"}).status_code == 303
    wait_for_runs(app)
    for path in ("/", "/search?q=conversation", "/import", "/settings/", "/archived", "/trash"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "More conversations" in page.get_data(as_text=True), path
