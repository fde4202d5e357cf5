"""Conversation pages: the new-chat page, a conversation, sending, its stream, stop and retry;
the actions on a message of the tree (edit, regenerate, switch version, fork, feedback)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user, login_required
from htmx_flask import request  # flask's request, typed with .htmx

from .. import htmx, tree
from ..errors import InvalidInput
from ..extensions import db
from ..files.services import files_of, owned_among
from ..models import Conversation, Message, Project, Run
from ..providers import available_models
from ..shares import services as share_links  # a module: it imports conversations too
from ..streaming import runs, sse
from ..usage.services import conversation_usage
from . import paging, projects, services, titles
from .formats import HtmlStreamFormat
from .services import NotFound

bp = Blueprint("conversations", __name__)
SIDEBAR_PROJECT_ITEMS = 20  # conversations of a project listed in its sidebar entry


def _conversation_or_404(conversation_id: str):
    try:
        return services.owned_conversation(current_user, conversation_id)
    except NotFound:
        abort(404, "No such conversation.")


def _message_or_404(message_id: str):
    try:
        return services.owned_message(current_user, message_id)
    except NotFound:
        abort(404, "No such message.")


def _composer_error(exc: InvalidInput, content: str | None, conversation=None, project=None):
    """The composer again with the error inline (for htmx, retargeted at the composer)."""
    html = render_template(
        "conversations/_composer.html",
        conversation=conversation,
        project=project,
        error=exc.message,
        content=content,
        models=available_models(),
        composer_files=owned_among(current_user, request.form.getlist("files")),  # issue 14
    )
    response = make_response(html, exc.status)
    if request.htmx:
        htmx.retarget(response, "#composer", "outerHTML")
    return response


def _sidebar(cursor: str | None = None) -> dict:
    """Template context of the sidebar: a page of loose conversations (or, with ``?tag=``, of
    those carrying the tag) and the cursor of the next, the projects and tags. An unknown tag
    is a 404."""
    tag = None
    if request.args.get("tag"):
        try:
            tag = projects.owned_tag(current_user, request.args["tag"])
        except NotFound:
            abort(404, "No such tag.")
    try:
        return paging.sidebar(current_user, cursor, tag=tag)
    except InvalidInput:
        abort(400, "This list of conversations has changed; reload the page.")


def _project_arg():
    """The project of ``?project=`` / the form's ``project_id`` (None when blank); 404 for an
    unknown or another user's."""
    value = request.values.get("project_id") or request.args.get("project")
    try:
        return projects.project_for(current_user, value)
    except InvalidInput:
        abort(404, "No such project.")


@bp.get("/")
@login_required
def index():
    """The new-chat page: a welcome state and the composer (``?project=``: a new chat in that
    project). For htmx, ``?cursor=`` gives the next page of the sidebar alone; ``?tag=``
    filters the sidebar by a tag."""
    cursor = request.args.get("cursor")
    if request.htmx and cursor:
        return htmx.vary(
            make_response(render_template("conversations/_sidebar.html", **_sidebar(cursor)))
        )
    return htmx.vary(
        make_response(
            render_template(
                "conversations/new.html",
                **_sidebar(cursor),
                models=available_models(),
                project=_project_arg(),
            )
        )
    )


@bp.post("/c")
@login_required
def create():
    """Start a conversation with its first message (in the project ``project_id``, if given),
    then open it."""
    content = request.form.get("content")
    project = _project_arg()
    try:
        conversation = services.create_conversation(
            current_user, model=request.form.get("model"), project=project
        )
        _message, run = services.send_message(
            conversation, content, files=request.form.getlist("files")
        )
    except InvalidInput as exc:
        db.session.rollback()
        return _composer_error(exc, content, project=project)
    db.session.commit()
    titles.launch(conversation, content or "", after=runs.launch(run.id))
    return _done(url_for(".show", conversation_id=conversation.id))


@bp.get("/c/<conversation_id>")
@login_required
def show(conversation_id: str):
    """A conversation: a window of its messages (the newest, or ``?around=<message id>``,
    ``?before=``, ``?after=``) and the composer. For htmx, ``?before=``/``?after=`` give the
    older or newer window alone, to load in place while the reader scrolls."""
    conversation = _conversation_or_404(conversation_id)
    before, after = request.args.get("before"), request.args.get("after")
    fragment = bool(request.htmx and (before or after))
    try:
        window = paging.window(
            conversation,
            limit=current_app.config["PAGE_SIZE"],
            before=before,
            after=after,
            around=request.args.get("around"),
            fragment=fragment,
        )
    except InvalidInput:
        abort(404, "No such message in this conversation.")
    if fragment:
        html = render_template(
            "conversations/_history.html",
            conversation=conversation,
            window=window,
            **_tree_context(window.messages),
        )
        return htmx.vary(make_response(html))
    return _page(conversation, window)


def _project_items(conversation: Conversation) -> dict | None:
    """The newest conversations of ``conversation``'s project, for its open entry in the
    sidebar (None when it is in none)."""
    if conversation.project_id is None:
        return None
    items, more = paging.conversations_page(
        current_user, limit=SIDEBAR_PROJECT_ITEMS, project=conversation.project_id
    )
    project = db.session.get(Project, conversation.project_id)
    return {"items": items, "more": more, "project": project}


def _tree_context(messages: Iterable[Message]) -> dict:
    """What the messages of a window need: each message's :class:`tree.Siblings` and files (one
    query each for the window) and the models a reply can be regenerated with."""
    messages = list(messages)
    return {
        "siblings": tree.siblings(messages),
        "models": available_models(),
        "attachments": files_of(messages),  # issue 14: each message's files, one query
    }


def _page(conversation: Conversation, window: paging.Window, status: int = 200, **extra):
    """The conversation page showing ``window``; ``extra`` goes to the templates (``editing``:
    the id of a message shown as its edit form; ``action_error``: ``{"id", "text"}``, an error
    shown in the toolbar of the bubble ``id``)."""
    html = render_template(
        "conversations/show.html",
        conversation=conversation,
        window=window,
        messages=window.messages,
        streaming=services.has_active_reply(conversation),
        usage=conversation_usage(conversation),
        conversation_tags=[t.name for t in conversation.tags],
        all_tags=projects.tags_of(current_user),
        open_project_items=_project_items(conversation),
        shares=share_links.shares_of(current_user, conversation),
        **_sidebar(),
        **_tree_context(window.messages),
        **extra,
    )
    return htmx.vary(make_response(html, status))


@bp.post("/c/<conversation_id>/messages")
@login_required
def send(conversation_id: str):
    """Store a message and its pending reply; htmx gets both bubbles, the reply streaming."""
    conversation = _conversation_or_404(conversation_id)
    content = request.form.get("content")
    try:
        message, run = services.send_message(
            conversation,
            content,
            request.form.get("model"),
            parent_id=_continuation(conversation, request.form.get("parent_id")),
            files=request.form.getlist("files"),
        )
    except InvalidInput as exc:
        db.session.rollback()
        return _composer_error(exc, content, conversation)
    db.session.commit()
    runs.launch(run.id)
    if not request.htmx:
        return redirect(url_for(".show", conversation_id=conversation.id), 303)
    reply = db.session.get(Message, run.message_id)
    assert reply is not None
    return render_template(
        "conversations/_turn.html",
        message=message,
        run=run,
        reply_messages=[reply],
        **_tree_context([message, reply]),
    )


def _continuation(conversation: Conversation, shown_leaf: str | None):
    """The parent of a message sent from the page: the newest message under ``shown_leaf``
    (the leaf of the path the page shows, from the composer), so the page continues the branch
    it shows, past the messages added below it since it was rendered (the reply to the last
    message sent, a reply's tool calls). None (the active leaf) when the form has none. Raises
    :class:`InvalidInput` for a message not of this conversation."""
    if not shown_leaf:
        return None
    return tree.newest_leaf(paging.find_message(conversation, shown_leaf, "parent_id"))


@bp.get("/m/<message_id>/stream")
@login_required
def stream(message_id: str):
    """The reply's run as Server-Sent Events (HTML payloads for htmx-ext-sse)."""
    message = _message_or_404(message_id)
    if message.run_id is None:
        abort(404, "This message has no stream.")
    return sse.stream_response(message.run_id, HtmlStreamFormat())


@bp.post("/m/<message_id>/cancel")
@login_required
def cancel(message_id: str):
    """Stop the reply's run; its partial text is kept."""
    message = _message_or_404(message_id)
    if message.run_id is not None:
        runs.cancel(message.run_id)
    if request.htmx:
        return "", 204
    return redirect(url_for(".show", conversation_id=message.conversation_id), 303)


@bp.post("/m/<message_id>/approval")
@login_required
def approval(message_id: str):
    """Allow, allow for this conversation, or deny a tool call awaiting approval (form field
    ``decision``); the reply continues. htmx gets the reply back, streaming again; a call
    decided already (another tab) is a 409 with the reply as it now is."""
    from ..mcp import approval as approvals

    message = _message_or_404(message_id)
    status = 200
    run: Run | None
    try:
        run = approvals.decide(message, request.form.get("decision", ""))
    except InvalidInput as exc:
        db.session.rollback()
        if not request.htmx or message.run_id is None:
            abort(exc.status, exc.message)
        run, status = db.session.get(Run, message.run_id), exc.status
    if not request.htmx:
        return redirect(url_for(".show", conversation_id=message.conversation_id), 303)
    html = HtmlStreamFormat().done(run.id) if run is not None else ""
    return html, status


@bp.post("/c/<conversation_id>/settings")
@login_required
def update_settings(conversation_id: str):
    """Change the conversation's model and system prompt; htmx gets the settings form back."""
    conversation = _conversation_or_404(conversation_id)
    form = {"model": request.form.get("model"), "system_prompt": request.form.get("system_prompt")}
    fields = ("temperature", "max_tokens", "reasoning_effort")
    raw = {key: request.form.get(key) for key in fields}
    try:
        params = services.parse_params(raw) if any(k in request.form for k in fields) else None
        services.update_settings(conversation, **form, params=params)
        if request.form.get("tools_shown"):
            from ..mcp import registry

            tools = request.form.getlist("tools")
            every = set(tools) == set(registry.server_names(current_app, conversation.user_id))
            registry.set_conversation_tools(current_app, conversation, None if every else tools)
    except InvalidInput as exc:
        db.session.rollback()
        if not request.htmx:
            abort(exc.status, exc.message)
        html = render_template(
            "conversations/_settings.html",
            conversation=conversation,
            models=available_models(),
            form={**form, **raw},
            error=exc.message,
        )
        return html, exc.status
    db.session.commit()
    if not request.htmx:
        return redirect(url_for(".show", conversation_id=conversation.id), 303)
    return render_template(
        "conversations/_settings.html",
        conversation=conversation,
        models=available_models(),
        saved=True,
    )


# --- The tree: edit, regenerate, switch version, fork, feedback (services in services.py) ------
# Each action is a POST on a message: htmx gets the messages area of the new active path (and
# the composer's parent, out of band), a plain form is redirected to the page. A refused action
# changes nothing and says why in the toolbar of its bubble (htmx: ``next .action-error`` from
# the form; plain form: the page again with the error in place).


def _owned(message_id: str) -> tuple[Message, Conversation]:
    """The user's message and its conversation. Raises :class:`InvalidInput` (404)."""
    try:
        message = services.owned_message(current_user, message_id)
    except NotFound:
        raise InvalidInput("No such message: it may have been deleted.", status=404) from None
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation is not None
    return message, conversation


def _bubble_id(message: Message):
    """The id of the bubble showing ``message``: its run's first message, else its own."""
    run = db.session.get(Run, message.run_id) if message.run_id else None
    return run.message_id if run is not None and run.message_id else message.id


def _limit() -> int:
    return current_app.config["PAGE_SIZE"]


def _action_error(exc: InvalidInput, message: Message | None = None):
    """A refused action, inline: htmx gets the text for the error line after the form; a plain
    form gets the page around ``message`` with the error in its bubble (or the error page)."""
    db.session.rollback()
    if request.htmx:
        html = render_template("conversations/_action_error.html", error=exc.message)
        return htmx.retarget(make_response(html, exc.status), "next .action-error", "innerHTML")
    if message is None:
        abort(exc.status, exc.message)
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation is not None
    window = paging.window(conversation, limit=_limit(), around=str(message.id))
    error = {"id": _bubble_id(message), "text": exc.message}
    return _page(conversation, window, exc.status, action_error=error)


def _tree_done(conversation: Conversation, focus_id, around: bool = False):
    """After an action that moved the active leaf: htmx gets the messages area of the active
    path (its newest window, or the window ``around`` the message ``focus_id``) and the
    composer's parent; a plain form is redirected to the page at ``focus_id``."""
    if not request.htmx:
        args = {"around": focus_id} if around else {}
        url = url_for(".show", conversation_id=conversation.id, _anchor=f"m-{focus_id}", **args)
        return redirect(url, 303)
    window = paging.window(conversation, limit=_limit(), around=str(focus_id) if around else None)
    html = render_template(
        "conversations/_history.html",
        conversation=conversation,
        window=window,
        composer_parent=True,
        **_tree_context(window.messages),
    )
    return htmx.vary(make_response(html))


def _message_action(view: Callable) -> Callable:
    """An action on one of the user's messages: ``view(message, conversation)``. Another user's
    or an unknown id is a 404, and an :class:`InvalidInput` it raises is answered inline
    (:func:`_action_error`); either way nothing is stored."""

    @functools.wraps(view)
    def action(message_id: str):
        message = None
        try:
            message, conversation = _owned(message_id)
            return view(message, conversation)
        except InvalidInput as exc:
            return _action_error(exc, message)

    return login_required(action)


@bp.get("/m/<message_id>/edit")
@_message_action
def edit(message: Message, conversation: Conversation):
    """The edit form of a user or assistant message, in place of its bubble (htmx), or the
    page around it with the form in place (no JavaScript)."""
    if message.role not in ("user", "assistant") or message.is_active:
        raise InvalidInput(f"This {message.role} message can't be edited now.")
    if request.htmx:
        html = render_template("conversations/_edit.html", message=message)
        return htmx.vary(make_response(html))
    window = paging.window(conversation, limit=_limit(), around=str(message.id))
    return _page(conversation, window, editing=message.id)


@bp.post("/m/<message_id>/edit")
@_message_action
def save_edit(message: Message, conversation: Conversation):
    """Save an edit as a new version of the message (a sibling; the original is kept): a user
    message's version gets a new reply, which streams; an assistant's is stored as written."""
    content = request.form.get("content")
    try:
        edited, run = services.edit_message(message, content)
    except InvalidInput as exc:
        db.session.rollback()
        if request.htmx:
            html = render_template(
                "conversations/_edit.html", message=message, content=content, error=exc.message
            )
            return htmx.retarget(make_response(html, exc.status), "this", "outerHTML")
        window = paging.window(conversation, limit=_limit(), around=str(message.id))
        return _page(
            conversation,
            window,
            exc.status,
            editing=message.id,
            edit_content=content,
            edit_error=exc.message,
        )
    db.session.commit()
    if run is not None:
        runs.launch(run.id)
    return _tree_done(conversation, edited.id)


@bp.post("/m/<message_id>/regenerate")
@_message_action
def regenerate(message: Message, conversation: Conversation):
    """Stream another reply in place of this one (a sibling version), with ``model`` if given."""
    run = services.regenerate(message, request.form.get("model") or None)
    db.session.commit()
    runs.launch(run.id)
    return _tree_done(conversation, run.message_id)


@bp.post("/m/<message_id>/retry")
@_message_action
def retry(message: Message, conversation: Conversation):
    """Generate a new reply to the message a failed or stopped reply answered: a regeneration
    of that reply (a sibling version, with its model)."""
    if message.role != "assistant" or message.is_active:
        raise InvalidInput("This reply can't be retried: only a finished assistant reply can.")
    run = services.regenerate(message)
    db.session.commit()
    runs.launch(run.id)
    return _tree_done(conversation, run.message_id)


@bp.post("/m/<message_id>/switch")
@_message_action
def switch(message: Message, conversation: Conversation):
    """Show this version of a message, and the newest path below it."""
    services.switch_branch(conversation, message)
    db.session.commit()
    return _tree_done(conversation, message.id, around=True)


@bp.post("/m/<message_id>/fork")
@_message_action
def fork(message: Message, conversation: Conversation):
    """A new conversation holding a copy of the path down to this message; open it."""
    copy = services.fork(current_user, message)
    db.session.commit()
    return _done(url_for(".show", conversation_id=copy.id))


@bp.post("/m/<message_id>/feedback")
@_message_action
def feedback(message: Message, conversation: Conversation):
    """Rate a reply up or down (``rating`` empty clears it), with an optional ``comment`` (kept
    when the form has none)."""
    rating = request.form.get("rating") or None
    asked = "comment" in request.form
    comment = request.form.get("comment") if asked else message.feedback_comment
    services.set_feedback(message, rating, comment)
    db.session.commit()
    if not request.htmx:
        url = url_for(".show", conversation_id=conversation.id, _anchor=f"m-{_bubble_id(message)}")
        return redirect(url, 303)
    # Asking for a comment after a thumbs down, unless one was just written.
    ask = rating == "down" and not asked and not comment
    html = render_template("conversations/_feedback.html", target=message, ask_comment=ask)
    return htmx.vary(make_response(html))


# --- Organising: rename, pin, archive, Trash (services in services.py) -----------------------


def _back(default: str):
    """Where a form sends the person afterwards: the page it came from, if it is on this site."""
    target = request.form.get("next") or ""
    return target if target.startswith("/") and not target.startswith("//") else default


def _done(url: str, fragment: str | None = None):
    """After an organising action: htmx gets ``fragment`` in place (or loads ``url``), a plain
    form post is redirected (303) to ``url``."""
    if not request.htmx:
        return redirect(url, 303)
    if fragment is None:
        return htmx.redirect(make_response("", 204), url)
    return htmx.vary(make_response(fragment))


@bp.post("/c/<conversation_id>/rename")
@login_required
def rename(conversation_id: str):
    """Rename a conversation inline; htmx gets the title form back and the sidebar entry."""
    conversation = _conversation_or_404(conversation_id)
    try:
        services.rename(conversation, request.form.get("title"))
    except InvalidInput as exc:
        db.session.rollback()
        html = render_template(
            "conversations/_title.html", conversation=conversation, error=exc.message
        )
        return make_response(html, exc.status) if request.htmx else abort(400, exc.message)
    db.session.commit()
    url = url_for(".show", conversation_id=conversation.id)
    html = render_template("conversations/_title.html", conversation=conversation, oob=True)
    return _done(url, html)


@bp.post("/c/<conversation_id>/pin")
@login_required
def pin(conversation_id: str):
    """Pin (``pinned=1``) or unpin (``pinned=0``) a conversation."""
    conversation = _conversation_or_404(conversation_id)
    services.set_pinned(conversation, request.form.get("pinned", "1") == "1")
    db.session.commit()
    return _done(_back(url_for(".show", conversation_id=conversation.id)))


@bp.post("/c/<conversation_id>/archive")
@login_required
def archive(conversation_id: str):
    """Archive (``archived=1``) a conversation, out of the sidebar, or unarchive it (``0``)."""
    conversation = _conversation_or_404(conversation_id)
    archived = request.form.get("archived", "1") == "1"
    services.set_archived(conversation, archived)
    db.session.commit()
    if request.htmx and request.form.get("next") == url_for(".archived"):
        return _done(url_for(".archived"), "")  # the row leaves the Archived list
    return _done(_back(url_for(".show", conversation_id=conversation.id)))


@bp.post("/c/<conversation_id>/trash")
@login_required
def trash(conversation_id: str):
    """Move a conversation to Trash; purges what has been in Trash past the retention."""
    conversation = _conversation_or_404(conversation_id)
    services.trash(conversation)
    services.purge_expired(current_user)
    db.session.commit()
    if request.htmx and request.form.get("next") == url_for(".archived"):
        return _done(url_for(".archived"), "")
    return _done(url_for(".index"))


@bp.get("/archived")
@login_required
def archived():
    """Archived conversations, with unarchive and move-to-Trash."""
    return render_template(
        "conversations/archived.html",
        archived=services.archived(current_user),
        **_sidebar(),
        conversation=None,
    )


@bp.get("/trash")
@login_required
def trash_index():
    """Conversations in Trash: restore, delete for good, empty Trash; when each expires."""
    return render_template(
        "conversations/trash.html",
        trashed=services.in_trash(current_user),
        expires_at=services.trash_expires_at,
        retention_days=current_app.config["TRASH_RETENTION_DAYS"],
        **_sidebar(),
        conversation=None,
    )


def _trashed_or_404(conversation_id: str):
    try:
        return services.owned_conversation(current_user, conversation_id, in_trash=True)
    except NotFound:
        abort(404, "No such conversation in Trash.")


@bp.post("/trash/<conversation_id>/restore")
@login_required
def restore(conversation_id: str):
    """Take a conversation out of Trash."""
    conversation = _trashed_or_404(conversation_id)
    services.restore(conversation)
    db.session.commit()
    return _done(url_for(".trash_index"), "")


@bp.post("/trash/<conversation_id>/purge")
@login_required
def purge(conversation_id: str):
    """Delete a conversation in Trash for good, with its messages."""
    services.purge(_trashed_or_404(conversation_id))
    db.session.commit()
    return _done(url_for(".trash_index"), "")


@bp.post("/trash/empty")
@login_required
def empty_trash():
    """Delete every conversation in Trash for good."""
    services.empty_trash(current_user)
    db.session.commit()
    return _done(url_for(".trash_index"))


# --- Projects and tags (services in projects.py) ----------------------------------------------


@bp.post("/c/<conversation_id>/project")
@login_required
def move(conversation_id: str):
    """Move a conversation into the project ``project_id`` (blank: out of any project)."""
    conversation = _conversation_or_404(conversation_id)
    projects.move(conversation, _project_arg())
    db.session.commit()
    return _done(_back(url_for(".show", conversation_id=conversation.id)))


@bp.post("/c/<conversation_id>/tags")
@login_required
def set_tags(conversation_id: str):
    """Replace a conversation's tags with ``tags`` (comma-separated); htmx gets the tag editor
    back, with the error inline for a bad tag."""
    conversation = _conversation_or_404(conversation_id)
    raw = request.form.get("tags", "")
    try:
        names = projects.set_tags(conversation, projects.parse_tags(raw))
    except InvalidInput as exc:
        db.session.rollback()
        html = render_template(
            "conversations/_tags.html",
            conversation=conversation,
            conversation_tags=[t.name for t in conversation.tags],
            open_project_items=_project_items(conversation),
            all_tags=projects.tags_of(current_user),
            tags_value=raw,
            error=exc.message,
        )
        return make_response(html, exc.status) if request.htmx else abort(exc.status, exc.message)
    db.session.commit()
    url = url_for(".show", conversation_id=conversation.id)
    html = render_template(
        "conversations/_tags.html",
        conversation=conversation,
        conversation_tags=names,
        all_tags=projects.tags_of(current_user),
        saved=True,
    )
    return _done(url, html)
