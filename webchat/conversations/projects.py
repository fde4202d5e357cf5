"""Projects and tags: organising a user's conversations.

A project is a named folder of conversations with its own instructions (added to the system
prompt of its conversations by :func:`instructions_for`) and a default model for new ones. A
conversation is in one project or none ("loose"); deleting a project moves its conversations
out (``ON DELETE SET NULL``), never deletes them.

Tags are free labels: a conversation has any number; a user's tags are unique by name (case
kept, whitespace collapsed, 1–50 characters) and are created as they are first used.

Another user's project or tag is "not found" (:class:`NotFound`) everywhere. Functions flush;
the caller commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import delete, func, insert, select, update

from ..errors import InvalidInput
from ..extensions import db
from ..models import Conversation, Project, Tag, User, conversation_tags, new_id, utcnow
from .services import NotFound, validate_model

NAME_CHARS = 100
TAG_CHARS = 50
TAGS_PER_CONVERSATION = 20
PROJECTS_LISTED = 500


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound(value) from None


def owned_project(user: User, project_id: uuid.UUID | str) -> Project:
    """The user's project ``project_id``. Raises :class:`NotFound` (unknown, malformed, or
    another user's)."""
    project = db.session.get(Project, _uuid(project_id))
    if project is None or project.user_id != user.id:
        raise NotFound(project_id)
    return project


def projects_of(user: User, limit: int = PROJECTS_LISTED) -> list[Project]:
    """The user's first ``limit`` projects by name (one index range of
    ``ix_projects_user_name``)."""
    return list(
        db.session.scalars(
            select(Project)
            .where(Project.user_id == user.id)
            .order_by(Project.name, Project.id)
            .limit(limit)
        )
    )


def _name(name: str | None) -> str:
    text = " ".join((name or "").split())
    if not text:
        raise InvalidInput("A project needs a name.", field="name")
    if len(text) > NAME_CHARS:
        raise InvalidInput(f"The name is {len(text)} characters; 100 at most.", field="name")
    return text


def _instructions(instructions: str | None) -> str | None:
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if instructions is not None and len(instructions) > limit:
        raise InvalidInput(
            f"The instructions are {len(instructions):,} characters; {limit:,} at most.",
            field="instructions",
        )
    return (instructions or "").strip() or None


def create_project(
    user: User,
    name: str | None,
    instructions: str | None = None,
    default_model: str | None = None,
) -> Project:
    """A new project of ``user``. ``name``: whitespace collapsed, 1–100 characters;
    ``instructions``: at most ``MAX_MESSAGE_CHARS``; ``default_model``: a model offered now, or
    None (the server's default). Raises :class:`InvalidInput` (400, the field at fault)."""
    now = utcnow()
    project = Project(
        id=new_id(),
        user_id=user.id,
        name=_name(name),
        instructions=_instructions(instructions),
        default_model=validate_model(default_model or None),
        created_at=now,
        updated_at=now,
    )
    db.session.add(project)
    db.session.flush()
    return project


def update_project(project: Project, fields: dict) -> Project:
    """Change the ``name``, ``instructions`` and/or ``default_model`` given in ``fields`` (a
    blank or None instructions or default model clears it). Raises :class:`InvalidInput`."""
    if "name" in fields:
        project.name = _name(fields["name"])
    if "instructions" in fields:
        project.instructions = _instructions(fields["instructions"])
    if "default_model" in fields:
        project.default_model = validate_model(fields["default_model"] or None)
    project.updated_at = utcnow()
    db.session.flush()
    return project


def delete_project(project: Project) -> int:
    """Delete ``project``; its conversations become loose (kept, Trash included). Returns how
    many conversations it held."""
    moved = db.session.execute(
        select(func.count()).select_from(Conversation).where(Conversation.project_id == project.id)
    ).scalar_one()
    # Explicit, not left to ON DELETE SET NULL alone: the session's loaded rows follow too.
    db.session.execute(
        update(Conversation)
        .where(Conversation.project_id == project.id)
        .values(project_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.delete(project)
    db.session.flush()
    db.session.expire_all()
    return int(moved)


def move(conversation: Conversation, project: Project | None) -> Conversation:
    """Put ``conversation`` in ``project`` (an already-owned one), or out of any (None)."""
    conversation.project_id = project.id if project is not None else None
    db.session.flush()
    return conversation


def project_for(user: User, project_id: uuid.UUID | str | None) -> Project | None:
    """The user's project ``project_id`` for a form or body field (None or blank: none).
    Raises :class:`InvalidInput` (404, field ``project_id``) for an unknown or another user's."""
    if project_id is None or project_id == "":
        return None
    try:
        return owned_project(user, project_id)
    except NotFound:
        raise InvalidInput("No such project.", field="project_id", status=404) from None


# --- Tags --------------------------------------------------------------------------------------


def tag_name(name: str) -> str:
    """A tag's stored name: whitespace collapsed, without a leading ``#``. Raises
    :class:`InvalidInput` (400, field ``tags``) for an empty or over-50-character one."""
    text = " ".join(str(name).split()).lstrip("#").strip()
    if not text:
        raise InvalidInput("A tag needs at least one character.", field="tags")
    if len(text) > TAG_CHARS:
        raise InvalidInput(f"The tag {text[:20]!r}… is over 50 characters.", field="tags")
    return text


def parse_tags(value: str | Iterable[str] | None) -> list[str]:
    """Tag names from a comma-separated string or a list, checked (:func:`tag_name`), first
    occurrence kept, at most 20. Raises :class:`InvalidInput` (400, field ``tags``)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        if isinstance(value, str) and not item.strip():
            continue
        name = tag_name(item)
        if name not in names:
            names.append(name)
    if len(names) > TAGS_PER_CONVERSATION:
        raise InvalidInput(
            f"{len(names)} tags; a conversation has {TAGS_PER_CONVERSATION} at most.",
            field="tags",
        )
    return names


def tags_of(user: User, limit: int | None = None) -> list[Tag]:
    """The user's tags by name, the first ``limit`` of them if given (the suggestions and the
    sidebar's filter; one index range of ``uq_tags_user_name``)."""
    query = select(Tag).where(Tag.user_id == user.id).order_by(Tag.name)
    return list(db.session.scalars(query.limit(limit) if limit is not None else query))


def owned_tag(user: User, name: str) -> Tag:
    """The user's tag named ``name``. Raises :class:`NotFound` (none of theirs has it)."""
    tag = db.session.scalars(
        select(Tag).where(Tag.user_id == user.id, Tag.name == " ".join(name.split()))
    ).first()
    if tag is None:
        raise NotFound(name)
    return tag


def set_tags(conversation: Conversation, names: Iterable[str]) -> list[str]:
    """Replace the conversation's tags with ``names`` (checked by :func:`parse_tags`), creating
    the user's new tags; tags no conversation uses any more are deleted. Returns the names."""
    wanted = parse_tags(list(names))
    user_id = conversation.user_id
    existing = (
        {
            t.name: t
            for t in db.session.scalars(
                select(Tag).where(Tag.user_id == user_id, Tag.name.in_(wanted))
            )
        }
        if wanted
        else {}
    )
    now = utcnow()
    for name in wanted:
        if name not in existing:
            tag = Tag(id=new_id(), user_id=user_id, name=name, created_at=now)
            db.session.add(tag)
            existing[name] = tag
    db.session.flush()
    old = set(
        db.session.scalars(
            select(conversation_tags.c.tag_id).where(
                conversation_tags.c.conversation_id == conversation.id
            )
        )
    )
    keep = {existing[n].id for n in wanted}
    if old - keep:
        db.session.execute(
            delete(conversation_tags).where(
                conversation_tags.c.conversation_id == conversation.id,
                conversation_tags.c.tag_id.in_(list(old - keep)),
            )
        )
    if keep - old:
        db.session.execute(
            insert(conversation_tags),
            [{"conversation_id": conversation.id, "tag_id": t} for t in keep - old],
        )
    _drop_unused(old - keep)
    db.session.expire(conversation, ["tags"])
    return sorted(wanted)


def _drop_unused(tag_ids: set[uuid.UUID]) -> None:
    """Delete the tags of ``tag_ids`` that no conversation carries any more."""
    if not tag_ids:
        return
    used = select(conversation_tags.c.tag_id).where(conversation_tags.c.tag_id == Tag.id)
    db.session.execute(
        delete(Tag)
        .where(Tag.id.in_(list(tag_ids)), ~used.exists())
        .execution_options(synchronize_session=False)
    )


def tag_names(conversations: Iterable[Conversation]) -> dict[uuid.UUID, list[str]]:
    """Each conversation's tag names, sorted: one query for them all."""
    ids = [c.id for c in conversations]
    out: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    if ids:
        rows = db.session.execute(
            select(conversation_tags.c.conversation_id, Tag.name)
            .join(Tag, Tag.id == conversation_tags.c.tag_id)
            .where(conversation_tags.c.conversation_id.in_(ids))
            .order_by(Tag.name)
        )
        for cid, name in rows:
            out[cid].append(name)
    return out
