"""The conversation page as a tree: the message toolbar, ‹ n/m › versions, and the actions on a
message (edit, regenerate, switch, fork, feedback) through the page's endpoints, with htmx and
with plain forms; refused actions inline, changing nothing."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from sqlalchemy import func, select

from webchat.extensions import db
from webchat.models import Conversation, Message, Project, Run, Share
from webchat.providers import register
from webchat.providers.base import Finish, ProviderError, TextDelta, ToolCall

from . import files_corpus
from .conftest import csrf_token, parse_sse, post, sign_up, wait_for_runs
from .fakes.queued import QueuedProvider
from .test_conversations import messages_of, start_conversation

VERSION = re.compile(r'class="version-count"[^>]*>(\d+/\d+)<')


def versions(html: str) -> list[str]:
    """Every ‹ n/m › the HTML shows, top to bottom."""
    return VERSION.findall(html)


def bubble_ids(html: str) -> list[str]:
    return re.findall(r'id="m-([0-9a-f-]{36})"', html)


def text(response) -> str:
    return response.get_data(as_text=True)


def pressed(html: str) -> list[str]:
    """The labels of the pressed thumbs in ``html``."""
    return re.findall(r'aria-pressed="true"\s+aria-label="([^"]+)"', html)


def count_messages(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Message))


def active_leaf(app, cid) -> uuid.UUID | None:
    with app.app_context():
        return db.session.get(Conversation, uuid.UUID(cid)).active_message_id


@pytest.fixture
def chat(app, user_client):
    """A conversation with one finished exchange: (conversation id, user message, reply)."""
    cid = start_conversation(user_client, "Explain **trees**")
    wait_for_runs(app)
    user, reply = messages_of(app, cid)
    return cid, user, reply


def test_toolbar_on_every_message(app, user_client, chat):
    cid, user, reply = chat
    page = text(user_client.get(f"/c/{cid}"))
    assert page.count('class="msg-toolbar"') == 2
    for label in ("Copy", "Edit", "Regenerate", "Fork", "Good reply", "Bad reply"):
        assert f'aria-label="{label}"' in page
    assert 'data-copy="Explain **trees**"' in page  # the raw Markdown, from the server
    assert f"/m/{reply.id}/regenerate" in page and f"/m/{user.id}/edit" in page
    assert "demo/echo</button>" in page  # the model menu of Regenerate
    assert versions(page) == []  # no message has siblings yet
    # A strict CSP is coming: no inline handlers, no inline script.
    assert "onclick=" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page)


def test_regenerate_twice_then_switch_with_htmx(app, user_client, chat):
    cid, user, reply = chat
    first = post(user_client, f"/m/{reply.id}/regenerate", htmx=True)
    assert first.status_code == 200
    assert versions(text(first)) == ["2/2"]
    assert 'sse-connect="/m/' in text(first)  # the new reply streams in the swapped area
    assert 'id="composer-parent"' in text(first) and 'hx-swap-oob="true"' in text(first)
    wait_for_runs(app)
    second = post(user_client, f"/m/{reply.id}/regenerate", htmx=True)
    wait_for_runs(app)
    replies = [m for m in messages_of(app, cid) if m.role == "assistant"]
    assert len(replies) == 3 and {m.parent_id for m in replies} == {user.id}
    assert versions(text(second)) == ["3/3"]
    page = text(user_client.get(f"/c/{cid}"))
    assert versions(page) == ["3/3"]
    assert 'aria-label="Version 3 of 3"' in page
    assert 'aria-label="Next version"' in page and 'aria-label="Previous version"' in page

    # ‹ goes to 2/3: the messages area of the path through it, the composer continues it.
    switched = post(user_client, f"/m/{replies[1].id}/switch", htmx=True)
    assert switched.status_code == 200 and "HX-Request" in switched.headers["Vary"]
    assert versions(text(switched)) == ["2/3"]
    assert f'value="{replies[1].id}" hx-swap-oob="true"' in text(switched)
    assert active_leaf(app, cid) == replies[1].id
    assert f'id="m-{replies[2].id}"' not in text(switched)
    page = text(user_client.get(f"/c/{cid}"))
    assert versions(page) == ["2/3"] and f'id="m-{replies[1].id}"' in page


def test_switch_and_regenerate_without_javascript(app, user_client, chat):
    cid, user, reply = chat
    regenerated = post(user_client, f"/m/{reply.id}/regenerate")
    assert regenerated.status_code == 303
    wait_for_runs(app)
    new = messages_of(app, cid)[-1]
    assert regenerated.headers["Location"] == f"/c/{cid}#m-{new.id}"
    # Each arrow is a plain form that posts and redirects.
    page = text(user_client.get(f"/c/{cid}"))
    assert f'<form method="post" action="/m/{reply.id}/switch"' in page
    switched = post(user_client, f"/m/{reply.id}/switch")
    assert switched.status_code == 303
    assert switched.headers["Location"] == f"/c/{cid}?around={reply.id}#m-{reply.id}"
    page = text(user_client.get(switched.headers["Location"]))
    assert versions(page) == ["1/2"] and f'id="m-{new.id}"' not in page


def test_edit_a_user_message_with_htmx(app, user_client, chat):
    cid, user, reply = chat
    form = user_client.get(f"/m/{user.id}/edit", headers={"HX-Request": "true"})
    assert form.status_code == 200
    assert text(form).startswith('<form class="msg msg-edit user" id="m-' + str(user.id))
    assert "Explain **trees**</textarea>" in text(form)
    saved = post(user_client, f"/m/{user.id}/edit", {"content": "Explain *forests*"}, htmx=True)
    assert saved.status_code == 200
    assert versions(text(saved)) == ["2/2"]  # on the user message
    assert 'sse-connect="/m/' in text(saved)
    wait_for_runs(app)
    messages = messages_of(app, cid)
    assert [m.content for m in messages[:2]] == ["Explain **trees**", reply.content]  # kept
    edited, new_reply = messages[2], messages[3]
    assert edited.parent_id is None and edited.meta["edited_from"] == str(user.id)
    assert new_reply.parent_id == edited.id and "Explain *forests*" in new_reply.content
    assert active_leaf(app, cid) == new_reply.id
    page = text(user_client.get(f"/c/{cid}"))
    assert versions(page) == ["2/2"] and "Explain **trees**" not in page.split('id="messages"')[1]
    # Back to the first version: its own reply, unchanged.
    back = text(post(user_client, f"/m/{user.id}/switch", htmx=True))
    assert versions(back) == ["1/2"] and f'id="m-{reply.id}"' in back


def test_edit_without_javascript(app, user_client, chat):
    cid, user, reply = chat
    page = user_client.get(f"/m/{user.id}/edit")
    assert page.status_code == 200
    assert '<form class="msg msg-edit user"' in text(page) and 'id="composer"' in text(page)
    refused = post(user_client, f"/m/{user.id}/edit", {"content": "  "})
    assert refused.status_code == 400
    assert "it is empty" in text(refused) and 'class="msg msg-edit user"' in text(refused)
    saved = post(user_client, f"/m/{user.id}/edit", {"content": "Second try"})
    assert saved.status_code == 303
    wait_for_runs(app)
    edited = messages_of(app, cid)[2]
    assert saved.headers["Location"] == f"/c/{cid}#m-{edited.id}"


def test_edit_an_assistant_reply_is_a_new_version_without_a_run(app, user_client, chat):
    cid, user, reply = chat
    with app.app_context():
        runs_before = db.session.scalar(select(func.count()).select_from(Run))
    saved = post(user_client, f"/m/{reply.id}/edit", {"content": "A **better** answer"}, htmx=True)
    assert saved.status_code == 200
    assert "<strong>better</strong>" in text(saved) and "edited</span>" in text(saved)
    assert versions(text(saved)) == ["2/2"] and "sse-connect" not in text(saved)
    messages = messages_of(app, cid)
    assert messages[1].content == reply.content  # the original is never changed
    assert messages[2].parent_id == user.id and messages[2].run_id is None
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Run)) == runs_before


def test_bad_edits_are_refused_inline(app, user_client, chat):
    cid, user, reply = chat
    before = count_messages(app)
    empty = post(user_client, f"/m/{user.id}/edit", {"content": " "}, htmx=True)
    assert empty.status_code == 400
    assert empty.headers["HX-Retarget"] == "this" and empty.headers["HX-Reswap"] == "outerHTML"
    assert "it is empty" in text(empty) and 'aria-invalid="true"' in text(empty)
    big = post(user_client, f"/m/{user.id}/edit", {"content": "x" * 100_001}, htmx=True)
    assert big.status_code == 413 and "limit is 100,000" in text(big)
    assert ("x" * 100_001) in text(big)  # what was typed is not lost
    assert count_messages(app) == before


def test_a_second_run_while_one_streams_is_refused(make_app):
    app = make_app(DEMO_DELAY_MS=40)
    client = app.test_client()
    sign_up(client)
    cid = start_conversation(client, "/long 200")
    user, reply = messages_of(app, cid)
    before = count_messages(app)
    again = post(client, f"/m/{reply.id}/regenerate", htmx=True)
    assert again.status_code == 409 and "still streaming" in text(again)
    assert again.headers["HX-Retarget"] == "next .action-error"
    edit = post(client, f"/m/{user.id}/edit", {"content": "other"}, htmx=True)
    assert edit.status_code == 409 and "still streaming" in text(edit)
    plain = post(client, f"/m/{reply.id}/regenerate")
    assert plain.status_code == 409 and 'class="action-error" role="alert">A reply' in text(plain)
    assert count_messages(app) == before
    post(client, f"/m/{reply.id}/cancel")
    wait_for_runs(app)


def test_regenerate_a_tool_message_or_an_unknown_id_is_refused_inline(app, user_client):
    fake = QueuedProvider()
    register(app, fake)
    fake.queue(ToolCall("c1", "calculate", {"expression": "6 * 7"}), Finish("tool_calls"))
    fake.queue(TextDelta("It is 42."), Finish("stop"))
    response = post(user_client, "/c", {"content": "6 * 7?", "model": "fake/model"})
    cid = response.headers["Location"].rsplit("/", 1)[1]
    wait_for_runs(app)
    tool = next(m for m in messages_of(app, cid) if m.role == "tool")
    before = count_messages(app)
    refused = post(user_client, f"/m/{tool.id}/regenerate", htmx=True)
    assert refused.status_code == 400 and "tool message" in text(refused)
    assert refused.headers["HX-Retarget"] == "next .action-error"
    unknown = post(user_client, f"/m/{uuid.uuid4()}/regenerate", htmx=True)
    assert unknown.status_code == 404 and "No such message" in text(unknown)
    assert unknown.headers["HX-Retarget"] == "next .action-error"
    assert post(user_client, "/m/not-a-uuid/switch", htmx=True).status_code == 404
    no_edit = user_client.get(f"/m/{tool.id}/edit", headers={"HX-Request": "true"})
    assert no_edit.status_code == 400 and "tool message can&#39;t be edited" in text(no_edit)
    assert no_edit.headers["HX-Retarget"] == "next .action-error"
    assert count_messages(app) == before
    # A reply with tool calls is one bubble: regenerate it, but no in-place edit.
    page = text(user_client.get(f"/c/{cid}"))
    assert page.count('aria-label="Regenerate"') == 1 and page.count('aria-label="Edit"') == 1


def test_regenerate_with_another_model(app, user_client, chat):
    cid, user, reply = chat
    register(app, QueuedProvider())
    page = text(user_client.get(f"/c/{cid}"))
    assert 'name="model" value="fake/model"' in page
    post(user_client, f"/m/{reply.id}/regenerate", {"model": "fake/model"}, htmx=True)
    wait_for_runs(app)
    new = messages_of(app, cid)[-1]
    assert new.content == "ok" and new.meta["model"] == "fake/model"
    unknown = post(user_client, f"/m/{reply.id}/regenerate", {"model": "nope/x"}, htmx=True)
    assert unknown.status_code == 400 and "Unknown model" in text(unknown)


def test_fork(app, user_client, chat):
    cid, user, reply = chat
    forked = post(user_client, f"/m/{reply.id}/fork", htmx=True)
    assert forked.status_code == 204
    new_cid = forked.headers["HX-Redirect"].rsplit("/", 1)[1]
    assert new_cid != cid
    copies = messages_of(app, new_cid)
    assert [m.content for m in copies] == [user.content, reply.content]
    page = text(user_client.get(f"/c/{new_cid}"))
    assert "(fork)" in page and reply.content.split(".")[0] in page
    plain = post(user_client, f"/m/{user.id}/fork")
    assert plain.status_code == 303 and plain.headers["Location"].startswith("/c/")
    assert [m.role for m in messages_of(app, plain.headers["Location"][3:])] == ["user"]
    assert len(messages_of(app, cid)) == 2  # the source is unchanged


def test_feedback(app, user_client, chat):
    cid, user, reply = chat
    up = post(user_client, f"/m/{reply.id}/feedback", {"rating": "up"}, htmx=True)
    assert up.status_code == 200 and pressed(text(up)) == ["Good reply"]
    down = post(user_client, f"/m/{reply.id}/feedback", {"rating": "down"}, htmx=True)
    assert "What was wrong with it?" in text(down) and "<details class=" in text(down)
    assert " open>" in text(down)  # the comment box opens after a thumbs down
    commented = post(
        user_client, f"/m/{reply.id}/feedback", {"rating": "down", "comment": "Too long"}
    )
    assert commented.status_code == 303
    assert commented.headers["Location"] == f"/c/{cid}#m-{reply.id}"
    with app.app_context():
        stored = db.session.get(Message, reply.id)
        assert (stored.feedback_rating, stored.feedback_comment) == ("down", "Too long")
    page = text(user_client.get(f"/c/{cid}"))
    assert "“Too long”" in page and pressed(page) == ["Bad reply"]
    # Pressing the pressed thumb un-rates; the comment stays.
    post(user_client, f"/m/{reply.id}/feedback", {"rating": ""}, htmx=True)
    with app.app_context():
        stored = db.session.get(Message, reply.id)
        assert (stored.feedback_rating, stored.feedback_comment) == (None, "Too long")
    refused = post(user_client, f"/m/{user.id}/feedback", {"rating": "up"}, htmx=True)
    assert refused.status_code == 400 and "replies only" in text(refused)
    bad = post(user_client, f"/m/{reply.id}/feedback", {"rating": "meh"}, htmx=True)
    assert bad.status_code == 400 and "rating must be" in text(bad)


def test_the_composer_continues_the_branch_shown(app, user_client, chat):
    cid, user, reply = chat
    post(user_client, f"/m/{reply.id}/regenerate")
    wait_for_runs(app)
    post(user_client, f"/m/{reply.id}/switch")
    page = text(user_client.get(f"/c/{cid}"))
    assert f'name="parent_id" id="composer-parent" value="{reply.id}"' in page
    sent = post(
        user_client,
        f"/c/{cid}/messages",
        {"content": "and then?", "parent_id": str(reply.id)},
        htmx=True,
    )
    assert sent.status_code == 200
    wait_for_runs(app)
    message = next(m for m in messages_of(app, cid) if m.content == "and then?")
    assert message.parent_id == reply.id


def test_a_finished_stream_renders_the_toolbar_with_versions(app, user_client, chat):
    cid, user, reply = chat
    post(user_client, f"/m/{reply.id}/regenerate")
    new = messages_of(app, cid)[-1]
    events = parse_sse(text(user_client.get(f"/m/{new.id}/stream")))
    assert events[-1]["event"] == "done"
    assert versions(events[-1]["data"]) == ["2/2"]
    assert 'aria-label="Regenerate"' in events[-1]["data"]
    wait_for_runs(app)


def test_another_users_ids_are_404(app, client):
    sign_up(client, "a@example.com")
    cid = start_conversation(client)
    wait_for_runs(app)
    user, reply = messages_of(app, cid)
    image = client.post(
        "/api/v1/files",
        data={"file": (io.BytesIO(files_corpus.png()), "a.png")},
        headers={"X-CSRFToken": csrf_token(client, "/")},
        content_type="multipart/form-data",
    ).get_json()
    assert client.get(image["thumbnail_url"]).status_code == 200
    other = app.test_client()
    sign_up(other, "b@example.com")
    before = count_messages(app)
    for url in (image["url"], image["thumbnail_url"]):  # files (issue 14)
        assert other.get(url).status_code == 404
    assert other.get(f"/m/{user.id}/edit").status_code == 404
    assert other.get(f"/m/{user.id}/edit", headers={"HX-Request": "true"}).status_code == 404
    for action, data in (
        ("edit", {"content": "mine"}),
        ("regenerate", {}),
        ("switch", {}),
        ("fork", {}),
        ("feedback", {"rating": "up"}),
        ("approval", {"decision": "allow"}),
    ):
        for htmx in (False, True):
            response = post(other, f"/m/{reply.id}/{action}", data, htmx=htmx)
            assert response.status_code == 404, (action, htmx)
    # the routes of projects, tags and share links (issue 15)
    project = post(client, "/projects", {"name": "Mine"}).headers["Location"].rsplit("/", 1)[1]
    post(client, f"/c/{cid}/tags", {"tags": "secret"})
    share = post(client, f"/c/{cid}/shares", {"branches": "active"})
    share_id = share.headers["Location"].split("shared=", 1)[1].split("#", 1)[0]
    own = start_conversation(other, "b's own")
    wait_for_runs(app)
    before = count_messages(app)
    for method, url, data in (
        ("post", f"/c/{cid}/shares", {}),
        ("post", f"/shares/{share_id}/update", {}),
        ("post", f"/shares/{share_id}/revoke", {}),
        ("get", f"/projects/{project}", None),
        ("post", f"/projects/{project}", {"name": "theirs"}),
        ("post", f"/projects/{project}/delete", {}),
        ("post", f"/c/{cid}/project", {"project_id": ""}),
        ("post", f"/c/{own}/project", {"project_id": project}),
        ("post", f"/c/{cid}/tags", {"tags": "x"}),
        ("post", "/c", {"content": "in yours", "project_id": project}),
        ("get", f"/?project={project}", None),
        ("get", "/?tag=secret", None),
    ):
        response = post(other, url, data) if method == "post" else other.get(url)
        assert response.status_code == 404, url
    assert other.get(f"/s/{share_id}").status_code == 200  # the link itself is for anyone
    assert count_messages(app) == before
    with app.app_context():
        assert db.session.get(Message, reply.id).feedback_rating is None
        assert db.session.scalar(select(func.count()).select_from(Conversation)) == 2
        assert db.session.get(Share, share_id) is not None
        assert db.session.get(Project, uuid.UUID(project)).name == "Mine"
        assert db.session.get(Conversation, uuid.UUID(own)).project_id is None
        assert [t.name for t in db.session.get(Conversation, uuid.UUID(cid)).tags] == ["secret"]
    own = start_conversation(other)  # another's file in one's own conversation: no way in
    wait_for_runs(app)
    response = post(other, f"/c/{own}/messages", {"content": "x", "files": image["id"]})
    assert response.status_code == 404


def test_a_forked_failed_reply_can_be_retried(app, user_client):
    fake = QueuedProvider()
    register(app, fake)
    fake.queue(TextDelta("Half"), ProviderError("upstream broke"))
    response = post(user_client, "/c", {"content": "try me", "model": "fake/model"})
    cid = response.headers["Location"].rsplit("/", 1)[1]
    wait_for_runs(app)
    failed = messages_of(app, cid)[-1]
    forked = post(user_client, f"/m/{failed.id}/fork")
    new_cid = forked.headers["Location"].rsplit("/", 1)[1]
    user_copy, failed_copy = messages_of(app, new_cid)
    with app.app_context():
        run = db.session.get(Run, failed_copy.run_id)
        assert (run.message_id, run.user_message_id) == (failed_copy.id, user_copy.id)
    retried = post(user_client, f"/m/{failed_copy.id}/retry")
    assert retried.status_code == 303
    wait_for_runs(app)
    assert [m.parent_id for m in messages_of(app, new_cid)[1:]] == [user_copy.id] * 2


def test_retry_refusals_are_inline(app, user_client, chat):
    cid, user, reply = chat
    refused = post(user_client, f"/m/{user.id}/retry", htmx=True)  # not a reply
    assert refused.status_code == 400 and "only a finished assistant reply" in text(refused)
    assert refused.headers["HX-Retarget"] == "next .action-error"
    assert post(user_client, f"/m/{uuid.uuid4()}/retry", htmx=True).status_code == 404


def test_sending_twice_from_one_page_continues_the_path(app, user_client, chat):
    cid, user, reply = chat
    page = text(user_client.get(f"/c/{cid}"))
    leaf = re.search(r'id="composer-parent" value="([^"]+)"', page).group(1)
    assert leaf == str(reply.id)
    for content in ("second", "third"):  # the composer keeps the parent it was rendered with
        sent = post(user_client, f"/c/{cid}/messages", {"content": content, "parent_id": leaf})
        assert sent.status_code == 303
        wait_for_runs(app)
    messages = messages_of(app, cid)
    assert [m.content for m in messages[::2]] == ["Explain **trees**", "second", "third"]
    assert all(m.parent_id == p.id for p, m in zip(messages, messages[1:], strict=False))
    foreign = post(user_client, f"/c/{cid}/messages", {"content": "x", "parent_id": "nope"})
    assert foreign.status_code == 400 and "parent_id" in text(foreign)
