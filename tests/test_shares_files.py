"""Files under share links (issues 14 and 15 joined): served under /s/<id>/files/<file_id> only
while the link is live, includes files and shows the message that holds them (the snapshot, the
shared path, tool steps); the same headers as the owner's files plus noindex; the JSON's
``files``; "continue" brings the files into the viewer's account only when the share includes
them."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from webchat.extensions import db
from webchat.models import Conversation, File, Message, MessageFile

from . import files_corpus as corpus
from . import test_api
from .conftest import post, sign_up, wait_for_runs
from .test_api import Api, new_conversation
from .test_files import uploaded
from .test_shares import tool_conversation

api = test_api.api  # the fixture
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def _conversation_with_files(app, api: Api, content: str = "look") -> tuple[str, dict, dict]:
    image = uploaded(api, "shot.png", corpus.png())
    notes = uploaded(api, "notes.md", b"# Plan\n<script>alert(1)</script>\n")
    cid = new_conversation(api, title="With files")["id"]
    sent = api.post(
        f"/conversations/{cid}/messages",
        json={"content": content, "files": [image["id"], notes["id"]]},
    )
    assert sent.status_code == 202, sent.get_data(as_text=True)
    wait_for_runs(app)
    return cid, image, notes


def _share(api: Api, cid: str, **body) -> str:
    created = api.post(f"/conversations/{cid}/shares", json=body)
    assert created.status_code == 201, created.get_data(as_text=True)
    return created.get_json()["id"]


def _continued(viewer, share_id: str) -> str:
    """Continue the share as ``viewer``; the id of their copy."""
    response = post(viewer, f"/s/{share_id}/continue")
    assert response.status_code == 303
    return response.headers["Location"].rsplit("/", 1)[1]


def _ids(conversation: Conversation):
    return select(Message.id).where(Message.conversation_id == conversation.id)


def _headers_are_strict(response, inline: bool) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == FILE_CSP
    assert response.headers["X-Robots-Tag"].startswith("noindex")
    kind = response.headers["Content-Disposition"].split(";", 1)[0]
    assert kind == ("inline" if inline else "attachment")


def test_a_share_with_files_shows_and_serves_them_with_strict_headers(app, api):
    cid, image, notes = _conversation_with_files(app, api)
    share_id = _share(api, cid, include_files=True)
    anonymous = app.test_client()
    html = anonymous.get(f"/s/{share_id}").get_data(as_text=True)
    base = f"/s/{share_id}/files"
    assert f'src="{base}/{image["id"]}/thumbnail"' in html
    assert f'href="{base}/{image["id"]}"' in html and f'href="{base}/{notes["id"]}"' in html
    assert f'"/files/{image["id"]}' not in html  # never the owner's URLs
    shown = anonymous.get(f"{base}/{image['id']}")
    assert shown.status_code == 200 and shown.content_type == "image/png"
    _headers_are_strict(shown, inline=True)
    thumb = anonymous.get(f"{base}/{image['id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.content_type == "image/webp"
    _headers_are_strict(thumb, inline=True)
    text = anonymous.get(f"{base}/{notes['id']}")
    assert text.status_code == 200 and text.content_type.startswith("text/plain")
    _headers_are_strict(text, inline=False)
    assert anonymous.get(f"{base}/{notes['id']}/thumbnail").status_code == 404
    assert anonymous.get(f"/files/{image['id']}").status_code == 404  # the owner's route
    assert anonymous.get(f"{base}/not-a-uuid").status_code == 404
    assert anonymous.get(f"{base}/{uuid.uuid4()}").status_code == 404
    # the JSON lists them with the share's URLs
    shared = anonymous.get(f"/api/v1/shared/{share_id}").get_json()
    files = shared["messages"][0]["files"]
    assert [f["id"] for f in files] == [image["id"], notes["id"]]
    assert set(files[0]) == {"id", "name", "media_type", "size", "url"}
    assert files[0]["url"] == f"{base}/{image['id']}" and files[0]["media_type"] == "image/png"
    assert shared["messages"][1]["files"] == []
    # another live share of the same owner, of another conversation: not this file
    other_cid = new_conversation(api, title="Other")["id"]
    api.post(f"/conversations/{other_cid}/messages", json={"content": "hi"})
    wait_for_runs(app)
    other = _share(api, other_cid, include_files=True)
    assert anonymous.get(f"/s/{other}/files/{image['id']}").status_code == 404
    # revoked: a 404 at once
    assert api.delete(f"/shares/{share_id}").status_code == 204
    assert anonymous.get(f"{base}/{image['id']}").status_code == 404
    assert anonymous.get(f"{base}/{image['id']}/thumbnail").status_code == 404


def test_a_share_without_files_shows_and_serves_none(app, api):
    cid, image, notes = _conversation_with_files(app, api)
    share_id = _share(api, cid)  # include_files defaults to False
    anonymous = app.test_client()
    html = anonymous.get(f"/s/{share_id}").get_data(as_text=True)
    assert "msg-files" not in html and image["id"] not in html and notes["id"] not in html
    for path in (image["id"], f"{image['id']}/thumbnail", notes["id"]):
        assert anonymous.get(f"/s/{share_id}/files/{path}").status_code == 404
    shared = anonymous.get(f"/api/v1/shared/{share_id}").get_json()
    assert all(m["files"] == [] for m in shared["messages"])
    # switched on: served; off again: 404
    assert api.patch(f"/shares/{share_id}", json={"include_files": True}).status_code == 200
    assert anonymous.get(f"/s/{share_id}/files/{image['id']}").status_code == 200
    assert api.patch(f"/shares/{share_id}", json={"include_files": False}).status_code == 200
    assert anonymous.get(f"/s/{share_id}/files/{image['id']}").status_code == 404


def test_a_file_sent_after_the_snapshot_or_off_the_shared_path_is_a_404(app, api):
    cid, image, _notes = _conversation_with_files(app, api)
    share_id = _share(api, cid, include_files=True)
    later = uploaded(api, "later.png", corpus.png(color=(10, 200, 10)))
    sent = api.post(
        f"/conversations/{cid}/messages", json={"content": "more", "files": [later["id"]]}
    )
    assert sent.status_code == 202
    wait_for_runs(app)
    anonymous = app.test_client()
    assert anonymous.get(f"/s/{share_id}/files/{later['id']}").status_code == 404
    assert later["id"] not in anonymous.get(f"/s/{share_id}").get_data(as_text=True)
    assert api.patch(f"/shares/{share_id}", json={"refresh": True}).status_code == 200
    assert anonymous.get(f"/s/{share_id}/files/{later['id']}").status_code == 200
    # an edit of that message (without the file) makes a new active path: the file's message
    # is off the shared path of an active-path share, still shown when every branch is
    edited = api.post(f"/messages/{sent.get_json()['message']['id']}/edit", json={"content": "x"})
    assert edited.status_code == 202, edited.get_data(as_text=True)
    wait_for_runs(app)
    with app.app_context():  # an edit keeps the files: drop them from the edited copy
        db.session.execute(
            MessageFile.__table__.delete().where(
                MessageFile.message_id == uuid.UUID(edited.get_json()["message"]["id"])
            )
        )
        db.session.commit()
    active = _share(api, cid, include_files=True)
    every = _share(api, cid, include_files=True, all_branches=True)
    assert anonymous.get(f"/s/{active}/files/{later['id']}").status_code == 404
    assert anonymous.get(f"/s/{every}/files/{later['id']}").status_code == 200
    assert anonymous.get(f"/s/{active}/files/{image['id']}").status_code == 200


def test_a_file_of_a_hidden_tool_step_is_a_404(app, ctx):
    from webchat.files import services as files
    from webchat.shares import services as shares

    from .test_search import make_user

    ada = make_user()
    conversation = tool_conversation(ada)
    tool_message = db.session.scalars(
        select(Message).where(Message.conversation_id == conversation.id, Message.role == "tool")
    ).one()
    chart = files.store(ada, "chart.png", files.prepare(corpus.png()))
    files.attach(tool_message, [chart])
    with_tools = shares.create_share(ada, conversation, include_tools=True, include_files=True)
    without = shares.create_share(ada, conversation, include_tools=False, include_files=True)
    db.session.commit()
    client = app.test_client()
    assert client.get(f"/s/{with_tools.id}/files/{chart.id}").status_code == 200
    assert client.get(f"/s/{without.id}/files/{chart.id}").status_code == 404
    assert client.get(f"/s/{without.id}/files/{chart.id}/thumbnail").status_code == 404


def test_continue_brings_included_files_into_the_viewers_account(app, api):
    cid, image, notes = _conversation_with_files(app, api)
    with_files = _share(api, cid, include_files=True)
    without_files = _share(api, cid)
    viewer = app.test_client()
    sign_up(viewer, "viewer@example.com")
    copy_id = _continued(viewer, with_files)
    page = viewer.get(f"/c/{copy_id}").get_data(as_text=True)
    with app.app_context():
        copy = db.session.get(Conversation, uuid.UUID(copy_id))
        theirs = db.session.scalars(
            select(File)
            .join(MessageFile, MessageFile.file_id == File.id)
            .where(MessageFile.message_id.in_(_ids(copy)))
            .order_by(MessageFile.position)
        ).all()
        assert [f.name for f in theirs] == ["shot.png", "notes.md"]
        assert {f.user_id for f in theirs} == {copy.user_id}
        originals = {uuid.UUID(image["id"]), uuid.UUID(notes["id"])}
        assert not originals & {f.id for f in theirs}
        assert theirs[0].sha256 == db.session.get(File, uuid.UUID(image["id"])).sha256
        ids = [str(f.id) for f in theirs]
    for fid in ids:  # the copy's page links to the viewer's own files, which open
        assert f"/files/{fid}" in page
        assert viewer.get(f"/files/{fid}").status_code == 200
    assert viewer.get(f"/files/{ids[0]}/thumbnail").status_code == 200
    assert viewer.get(f"/files/{image['id']}").status_code == 404  # not the owner's
    # continued again: the same files of theirs, no new rows
    again = _continued(viewer, with_files)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(File)) == 4
    assert f"/files/{ids[0]}" in viewer.get(f"/c/{again}").get_data(as_text=True)
    # a share without files: the copy carries none
    bare = _continued(viewer, without_files)
    with app.app_context():
        copy = db.session.get(Conversation, uuid.UUID(bare))
        assert copy.message_count == 2
        refs = db.session.scalar(
            select(func.count())
            .select_from(MessageFile)
            .where(MessageFile.message_id.in_(_ids(copy)))
        )
        assert refs == 0
