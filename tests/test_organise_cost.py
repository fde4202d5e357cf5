"""Projects, tags and share links do work that doesn't grow: the sidebar of a user with 10,000
conversations in 100 projects with 50 tags does the same work as one with 100 conversations in
one project with 5 tags (the sidebar lists the first 10 projects and 12 tags); a shared page of
a conversation of 10,000 messages the same as one of 100 (every branch shared, 20 branch points
each, older pages and another version included).

Work is counted, not timed, as in ``test_tree_cost``: statements, rows returned, and each
distinct read's plan work.
"""

from __future__ import annotations

from sqlalchemy import select, text

from webchat.extensions import db
from webchat.models import Conversation, Share, User
from webchat.seed import branch_prompts, organise, seed
from webchat.shares import services as shares

from .conftest import sign_up
from .test_tree_cost import BRANCHES, Work, assert_same_work, recorded

# The sidebar's reads of the project and tag names (LIMIT 11 and 13): PostgreSQL may scan those
# small tables whole (101 projects, 55 tags here) rather than walk their index; never more.
LISTS = ("SELECT projects.", "SELECT tags.")
LISTED = 3 * (101 + 55) + 100


def _compare(small: dict[str, Work], large: dict[str, Work], app) -> None:
    """The same work (a full page reads one row more; the name lists at most :data:`LISTED`)."""
    assert_same_work(
        app,
        small,
        large,
        rows_slack=2,
        exempt=lambda sql, work: sql.startswith(LISTS) and work <= LISTED,
    )


def _get(app, client, url: str, **headers: str) -> Work:
    with app.app_context(), recorded() as work:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    return work


def test_the_sidebar_does_the_same_work_with_10000_conversations_in_100_projects(make_app):
    app = make_app()
    clients = {}
    for email, conversations, projects, tags in (
        ("small@example.com", 100, 1, 5),
        ("many@example.com", 10_000, 100, 50),
    ):
        client = app.test_client()
        sign_up(client, email)
        with app.app_context():
            user = db.session.scalars(select(User).where(User.email == email)).one()
            seed(user, messages=2, conversations=conversations, random_seed=conversations)
            organise(user, projects=projects, tags=tags)
            db.session.commit()
        clients[email] = client
    with app.app_context(), db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Statistics as autovacuum leaves them after a bulk load. With those of the earlier,
            # project-less tests, PostgreSQL walks ix_conversations_sidebar filtering
            # project_id IS NULL (5,103 rows in one full run) instead of ix_conversations_loose.
            connection.execute(text("ANALYZE conversations"))
    done = {}
    for email, client in clients.items():
        with app.app_context():
            user = db.session.scalars(select(User).where(User.email == email)).one()
            one = db.session.scalars(
                select(Conversation.project_id).where(
                    Conversation.user_id == user.id, Conversation.project_id.is_not(None)
                )
            ).first()
        done[email] = {
            "new-chat page": _get(app, client, "/"),
            "a project's entry": _get(
                app, client, f"/projects/{one}?sidebar=1", **{"HX-Request": "true"}
            ),
            "a project's page": _get(app, client, f"/projects/{one}"),
        }
    small, large = done["small@example.com"], done["many@example.com"]
    # the sidebar lists the first 10 projects and 12 tags by name: 11 and 13 rows read (to know
    # whether more remain) against the small account's 1 and 5; every other read is the same
    for name in ("new-chat page", "a project's page"):
        large[name].rows -= (11 - 1) + (13 - 5)
    _compare(small, large, app)


def test_a_shared_page_does_the_same_work_at_100_and_10000_messages(make_app):
    app = make_app(PAGE_SIZE=10)
    client = app.test_client()
    sign_up(client)
    done = {}
    for size in (100, 10_000):
        with app.app_context():
            user = db.session.scalars(select(User)).one()
            (cid,) = seed(user, messages=size, branches=BRANCHES, random_seed=size)
            conversation = db.session.get(Conversation, cid)
            share = shares.create_share(user, conversation, all_branches=True)
            share_id = share.id
            edit = branch_prompts(cid)[BRANCHES // 2][0]
            db.session.commit()
            window = shares.shared_window(share, limit=10)
            older = window.window.older
            assert older is not None
        anonymous = app.test_client()
        done[size] = {
            "shared page": _get(app, anonymous, f"/s/{share_id}"),
            "shared page, older": _get(app, anonymous, f"/s/{share_id}?before={older.id}"),
            "shared page, another version": _get(app, anonymous, f"/s/{share_id}?leaf={edit}"),
            "shared JSON": _get(app, anonymous, f"/api/v1/shared/{share_id}?limit=10"),
        }
        with app.app_context():
            assert db.session.get(Share, share_id).views == 4
    _compare(done[100], done[10_000], app)
