"""The one search function: a user's conversation titles and message text, ranked, with snippets.

The index is kept by the database (see ``migrations/versions/0002_search_index.py`` and
``0010_search_reasoning.py``): SQLite FTS5 (``search_fts(title, body, reasoning)``, BM25 ranking,
weighted 4 : 1 : 0.5) or PostgreSQL ``tsvector`` with a GIN index (``ts_rank``, titles weight A,
message text D, reasoning C ranked below D). Both stem English words, so "running" finds "run".
A message's reasoning (its model's thinking) is searched too; a hit none of whose words are in
the message's text is marked ``in_reasoning`` and its snippet is taken from the reasoning.

Query syntax, the same on both databases (a subset of PostgreSQL's ``websearch_to_tsquery``):
words are ANDed, ``"quoted phrases"`` match in order, ``-word`` excludes, ``OR`` between two
terms matches either. Only conversations of the user that are not in Trash are searched.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Select,
    Table,
    Uuid,
    bindparam,
    case,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)

from ..errors import InvalidInput
from ..extensions import db
from ..models import Conversation, Message, Role, Run, User, conversation_tags

MAX_LIMIT = 100
RANK_WINDOW = 10_000  # matches ranked at most: a broader query ranks its newest ones
MAX_TERMS = 16  # words and phrases of one query; more are ignored
SNIPPET_WORDS = 24  # tokens of context around the matches in a snippet
_START, _STOP = "\x02", "\x03"  # highlight markers, never in stored text we show
# ts_rank's weights of D (message text), C (reasoning), B (unused), A (titles): the defaults,
# except that reasoning ranks below the text, as on SQLite.
PG_WEIGHTS = "CAST('{0.1, 0.05, 0.4, 1.0}' AS real[])"

search_docs = Table(
    "search_docs",
    db.metadata,
    Column("id", BigInteger, primary_key=True),
    Column("conversation_id", Uuid, nullable=False),
    Column("message_id", Uuid, nullable=True),
    info={"managed_by": "migrations 0002, 0010 (triggers)"},
)
_fts = table("search_fts", column("rowid"))


@dataclass(frozen=True)
class Filters:
    """Narrow a search. ``roles`` (user, assistant, system, tool) leaves titles out; ``model``
    matches a message's model (its ``metadata.model``) or else its conversation's; ``since`` and
    ``until`` (aware datetimes, inclusive, exclusive) bound the message's ``created_at``."""

    roles: tuple[str, ...] = ()
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    conversation_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None  # a project of the user's (already checked)
    tag_id: uuid.UUID | None = None  # a tag of the user's (already checked)


@dataclass(frozen=True)
class Hit:
    """One result: a message (``message_id`` set) or a conversation title (``message_id`` None).

    ``snippet`` is sanitized HTML: the matched text escaped, matches wrapped in ``<mark>``.
    ``score`` is higher for better matches (BM25 negated on SQLite, ``ts_rank`` on PostgreSQL).
    ``anchor_id`` is the message whose ``#m-<id>`` the page shows it under: the message itself,
    or the first message of the reply (run) it is part of. ``in_reasoning``: no word of the query
    is in the message's text, only in its reasoning (the model's thinking), which the snippet
    then shows.
    """

    conversation_id: uuid.UUID
    conversation_title: str
    message_id: uuid.UUID | None
    role: str | None
    snippet: Markup
    created_at: datetime
    model: str | None
    archived: bool
    score: float
    anchor_id: uuid.UUID | None = None
    in_reasoning: bool = False


@dataclass
class Results:
    """A page of hits, best first, and the cursor of the next page (None on the last).

    ``windowed``: the query matched more than :data:`RANK_WINDOW` messages, and the hits are the
    best of the newest :data:`RANK_WINDOW` (ranking every match of a word in half of a million
    messages would take seconds; narrow the query, or filter, to reach older ones)."""

    items: list[Hit] = field(default_factory=list)
    next_cursor: str | None = None
    windowed: bool = False  # more than RANK_WINDOW matches: the newest of them were ranked


class BadCursor(ValueError):
    """The cursor was not one this module produced."""


# --- query text ----------------------------------------------------------------------------

_TOKEN_RE = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD_RE = re.compile(r"\w+", re.UNICODE)


def parse_query(q: str) -> list[list[tuple[bool, str]]]:
    """Split search text into OR-groups of ``(negated, phrase)`` terms.

    ``'deploy "staging cluster" -helm OR rollback'`` → ``[[(False, "deploy"), (False, "staging
    cluster")], [(True, "helm"), ...]]``-like groups: terms within a group are ANDed, groups are
    ORed (``OR`` binds the term before it with the term after it, as websearch_to_tsquery does).
    Punctuation-only terms are dropped.
    """
    terms: list[tuple[bool, str] | str] = []
    for match in _TOKEN_RE.finditer(q):
        neg_phrase, phrase, bare = match.groups()
        if bare is not None:
            if bare == "OR":
                terms.append("OR")
                continue
            negated = bare.startswith("-") and len(bare) > 1
            words = _WORD_RE.findall(bare[1:] if negated else bare)
        else:
            negated = neg_phrase == "-"
            words = _WORD_RE.findall(phrase)
        if words and len(terms) < MAX_TERMS:
            terms.append((negated, " ".join(words)))
    # Fold "a OR b" into alternatives of one AND-position, then expand to OR-groups.
    positions: list[list[tuple[bool, str]]] = []
    pending_or = False
    for term in terms:
        if term == "OR":
            pending_or = bool(positions)
            continue
        assert isinstance(term, tuple)
        if pending_or and not term[0]:
            positions[-1].append(term)
        else:
            positions.append([term])
        pending_or = False
    groups: list[list[tuple[bool, str]]] = [[]]
    for alternatives in positions:
        if len(groups) * len(alternatives) > MAX_TERMS:
            alternatives = alternatives[:1]  # too many ORs: keep the query bounded
        groups = [g + [alt] for g in groups for alt in alternatives]
    return [g for g in groups if any(not neg for neg, _ in g)]


def _fts5_query(groups: list[list[tuple[bool, str]]]) -> str:
    """The FTS5 MATCH expression of parsed groups (every term a quoted string, so no operator
    or column filter can be injected)."""

    def quoted(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    parts = []
    for group in groups:
        positive = " AND ".join(quoted(t) for neg, t in group if not neg)
        negative = "".join(f" NOT {quoted(t)}" for neg, t in group if neg)
        parts.append(f"({positive}{negative})")
    return " OR ".join(parts)


def _websearch_text(groups: list[list[tuple[bool, str]]]) -> str:
    """The same groups as ``websearch_to_tsquery`` input."""
    parts = []
    for group in groups:
        parts.append(" ".join(("-" if neg else "") + f'"{t}"' for neg, t in group))
    return " OR ".join(parts)


def highlight(snippet: str) -> Markup:
    """Sanitized HTML of a snippet whose matches are wrapped in the \\x02…\\x03 markers:
    everything escaped, each marked run in ``<mark>``, tags always balanced."""
    out: list[str] = []
    open_ = False
    for part in re.split(f"([{_START}{_STOP}])", snippet):
        if part == _START:
            if not open_:
                out.append("<mark>")
                open_ = True
        elif part == _STOP:
            if open_:
                out.append("</mark>")
                open_ = False
        else:
            out.append(html.escape(part, quote=False))
    if open_:
        out.append("</mark>")
    return Markup("".join(out).strip())


MAX_OFFSET = 9_999  # the last hit a search pages to (a cursor has at most 4 digits)


def encode_cursor(offset: int) -> str:
    """The cursor of the page starting at hit ``offset`` (its decimal digits)."""
    return str(offset)


def decode_cursor(cursor: str | None) -> int:
    """The offset a cursor from :func:`encode_cursor` stands for (0 for None).
    Raises :class:`BadCursor` for anything else, or past :data:`MAX_OFFSET`."""
    if not cursor:
        return 0
    if not cursor.isascii() or not cursor.isdigit() or int(cursor) > MAX_OFFSET:
        raise BadCursor(cursor)
    return int(cursor)


# --- the query -----------------------------------------------------------------------------


def _filters(stmt: Select, user: User, filters: Filters) -> Select:
    stmt = stmt.where(Conversation.user_id == user.id, Conversation.deleted_at.is_(None))
    created = func.coalesce(Message.created_at, Conversation.created_at)
    if filters.roles:
        stmt = stmt.where(Message.role.in_(filters.roles))
    if filters.model:
        model = func.coalesce(Message.meta["model"].as_string(), Conversation.model)
        stmt = stmt.where(model == filters.model)
    if filters.since is not None:
        stmt = stmt.where(
            created >= bindparam("since", filters.since, type_=Message.created_at.type)
        )
    if filters.until is not None:
        stmt = stmt.where(
            created < bindparam("until", filters.until, type_=Message.created_at.type)
        )
    if filters.conversation_id is not None:
        stmt = stmt.where(search_docs.c.conversation_id == filters.conversation_id)
    if filters.project_id is not None:
        stmt = stmt.where(Conversation.project_id == filters.project_id)
    if filters.tag_id is not None:
        tagged = select(conversation_tags.c.conversation_id).where(
            conversation_tags.c.tag_id == filters.tag_id,
            conversation_tags.c.conversation_id == search_docs.c.conversation_id,
        )
        stmt = stmt.where(tagged.exists())
    return stmt


def _columns(score: ColumnElement) -> list:
    return [
        search_docs.c.id,
        search_docs.c.conversation_id,
        search_docs.c.message_id,
        Conversation.title,
        Conversation.model.label("conversation_model"),
        Conversation.archived_at,
        Conversation.created_at.label("conversation_created_at"),
        Message.role,
        Message.created_at,
        Message.meta["model"].as_string().label("message_model"),
        score.label("score"),
    ]


def _joined(stmt: Select) -> Select:
    return stmt.join(Conversation, Conversation.id == search_docs.c.conversation_id).outerjoin(
        Message, Message.id == search_docs.c.message_id
    )


def _matches_sqlite(match: str, user: User, filters: Filters, *columns: Any) -> Select:
    stmt = _joined(
        select(*columns).select_from(_fts).join(search_docs, search_docs.c.id == _fts.c.rowid)
    ).where(text("search_fts MATCH :match").bindparams(match=match))
    return _filters(stmt, user, filters)


def _ranked_sqlite(match: str, user: User, filters: Filters, offset: int, limit: int):
    """The page of hits, and whether only the newest :data:`RANK_WINDOW` matches were ranked."""
    # FTS5 walks a term's matches newest first without ranking them, so the window's start is
    # cheap to find; a rowid bound then keeps BM25 to the window.
    newest = (
        _matches_sqlite(match, user, filters, _fts.c.rowid.label("rowid"))
        .order_by(_fts.c.rowid.desc())
        .limit(RANK_WINDOW)
        .subquery()
    )
    count, start = db.session.execute(
        select(func.count(), func.min(newest.c.rowid)).select_from(newest)
    ).one()
    windowed = count >= RANK_WINDOW
    score: ColumnElement[float] = literal_column("bm25(search_fts, 4.0, 1.0, 0.5)")
    stmt = _matches_sqlite(match, user, filters, *_columns(-score))
    if windowed:
        stmt = stmt.where(_fts.c.rowid >= start)
    stmt = stmt.order_by(score, search_docs.c.id).limit(limit).offset(offset)
    return db.session.execute(stmt).all(), windowed


def _snippets_sqlite(match: str, ids: list[int], reasoning: bool) -> dict[int, str]:
    # A message's row has an empty title; a title's row has nothing else.
    rows = db.session.execute(
        text(
            "SELECT rowid, snippet(search_fts, CASE WHEN title = '' THEN :column ELSE 0 END, "
            ":start, :stop, '…', :words) FROM search_fts "
            "WHERE search_fts MATCH :match AND rowid IN :ids"
        ).bindparams(bindparam("ids", expanding=True)),
        {
            "match": match,
            "ids": ids,
            "column": 2 if reasoning else 1,
            "start": _START,
            "stop": _STOP,
            "words": SNIPPET_WORDS,
        },
    ).all()
    return {row[0]: row[1] for row in rows}


def _tsquery(websearch: str) -> ColumnElement:
    return func.websearch_to_tsquery(literal_column("'english'::regconfig"), websearch)


def _ranked_postgres(websearch: str, user: User, filters: Filters, offset: int, limit: int):
    """The page of hits, and whether only the newest :data:`RANK_WINDOW` matches were ranked."""
    tsv: ColumnElement[Any] = literal_column("search_docs.tsv")
    query = _tsquery(websearch)
    matches = _filters(
        _joined(select(search_docs.c.id).select_from(search_docs)).where(tsv.op("@@")(query)),
        user,
        filters,
    )
    newest = matches.order_by(search_docs.c.id.desc()).limit(RANK_WINDOW).subquery("newest")
    # 1: divided by 1 + log(length), as BM25 favours short
    score = func.ts_rank(literal_column(PG_WEIGHTS), tsv, query, 1)
    # Rank the window from the index rows alone; read conversations and messages for the page.
    ranked = (
        select(search_docs.c.id, score.label("score"), func.count().over().label("matches"))
        .select_from(newest)
        .join(search_docs, search_docs.c.id == newest.c.id)
        .order_by(score.desc(), search_docs.c.id)
        .limit(limit)
        .offset(offset)
        .subquery("ranked")
    )
    stmt = _joined(
        select(*_columns(ranked.c.score), ranked.c.matches)
        .select_from(ranked)
        .join(search_docs, search_docs.c.id == ranked.c.id)
    ).order_by(ranked.c.score.desc(), ranked.c.id)
    # These short queries gain nothing from JIT compilation, which costs ~10 ms when the
    # planner's estimate of a broad query passes jit_above_cost.
    db.session.execute(text("SET LOCAL jit = off"))
    rows = db.session.execute(stmt).all()
    return rows, bool(rows) and rows[0].matches >= RANK_WINDOW


def _snippets_postgres(websearch: str, ids: list[int], reasoning: bool) -> dict[int, str]:
    options = (
        f"StartSel={_START}, StopSel={_STOP}, MaxWords={SNIPPET_WORDS}, MinWords=8, "
        'MaxFragments=2, FragmentDelimiter=" … "'
    )
    body = case(
        (search_docs.c.message_id.is_(None), Conversation.title),
        else_=Message.reasoning
        if reasoning
        else func.webchat_search_body(
            Message.content, Message.tool_name, Message.tool_call, Message.tool_result
        ),
    )
    stmt = _joined(
        select(
            search_docs.c.id,
            func.ts_headline(
                literal_column("'english'::regconfig"), body, _tsquery(websearch), options
            ),
        ).select_from(search_docs)
    ).where(search_docs.c.id.in_(ids))
    return {row[0]: row[1] for row in db.session.execute(stmt).all()}


def search(
    user: User,
    q: str,
    filters: Filters | None = None,
    *,
    cursor: str | None = None,
    limit: int = 20,
) -> Results:
    """Search ``user``'s titles and messages for ``q``; best ``limit`` hits (1–100) from
    ``cursor`` on.

    Returns :class:`Results`: empty when ``q`` has no searchable word. Another user's rows and
    conversations in Trash never appear. Raises :class:`BadCursor` for a foreign cursor.
    """
    filters = filters or Filters()
    limit = max(1, min(limit, MAX_LIMIT))
    offset = decode_cursor(cursor)
    groups = parse_query(q or "")
    if not groups:
        return Results()
    snippets_of: Callable[[str, list[int], bool], dict[int, str]]
    if db.engine.dialect.name == "postgresql":
        expression = _websearch_text(groups)
        rows, windowed = _ranked_postgres(expression, user, filters, offset, limit + 1)
        snippets_of = _snippets_postgres
    else:
        expression = _fts5_query(groups)
        rows, windowed = _ranked_sqlite(expression, user, filters, offset, limit + 1)
        snippets_of = _snippets_sqlite
    snippets = snippets_of(expression, [r.id for r in rows[:limit]], False)
    # A message none of whose text is marked matched in its reasoning: show that instead.
    unmarked = [
        r.id for r in rows[:limit] if r.message_id and _START not in (snippets.get(r.id) or "")
    ]
    thoughts = {
        i: snippet
        for i, snippet in (snippets_of(expression, unmarked, True) if unmarked else {}).items()
        if _START in (snippet or "")
    }
    anchors = _anchors([r.message_id for r in rows[:limit] if r.message_id is not None])
    items = [
        Hit(
            conversation_id=r.conversation_id,
            conversation_title=r.title,
            message_id=r.message_id,
            anchor_id=anchors.get(r.message_id) if r.message_id else None,
            role=r.role,
            snippet=highlight(thoughts.get(r.id) or snippets.get(r.id) or r.title),
            in_reasoning=r.id in thoughts,
            created_at=r.created_at or r.conversation_created_at,
            model=r.message_model or r.conversation_model,
            archived=r.archived_at is not None,
            score=float(r.score),
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit and offset + limit <= MAX_OFFSET
    return Results(items, encode_cursor(offset + limit) if more else None, windowed)


def _anchors(message_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Message id → the id its bubble carries on the page: its run's first message, or itself."""
    if not message_ids:
        return {}
    rows = db.session.execute(
        select(Message.id, func.coalesce(Run.message_id, Message.id))
        .outerjoin(Run, Run.id == Message.run_id)
        .where(Message.id.in_(message_ids))
    )
    return {mid: anchor for mid, anchor in rows}


def index_size() -> int:
    """Rows in the search index (titles and messages), for checks and benchmarks."""
    return db.session.execute(select(func.count()).select_from(search_docs)).scalar_one()


def _date(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise InvalidInput(f"{name} must be a date like 2024-01-31.", field=name) from None
    return day.replace(tzinfo=UTC)


def organising_filters(
    user: User, project: uuid.UUID | str | None, tag: str | None
) -> dict[str, uuid.UUID | None]:
    """``{"project_id", "tag_id"}`` of :class:`Filters` for the user's project (an id) and tag
    (a name), None when not given. Raises :class:`InvalidInput` (404) for one not the user's."""
    from ..conversations.projects import owned_project, owned_tag
    from ..conversations.services import NotFound

    out: dict[str, uuid.UUID | None] = {"project_id": None, "tag_id": None}
    try:
        if project:
            out["project_id"] = owned_project(user, project).id
    except NotFound:
        raise InvalidInput("No such project.", field="project", status=404) from None
    try:
        if tag:
            out["tag_id"] = owned_tag(user, tag).id
    except NotFound:
        raise InvalidInput("No such tag.", field="tag", status=404) from None
    return out


def parse_filters(args: Mapping[str, Any], user: User | None = None) -> Filters:
    """:class:`Filters` from request arguments: ``role`` (repeatable or comma-separated),
    ``model``, ``since`` and ``until`` (``YYYY-MM-DD``, both days included, UTC), ``conversation``
    (an id); with ``user``, ``project`` (an id) and ``tag`` (a name) of theirs. Raises
    :class:`InvalidInput` naming the field at fault (404 for another user's project or tag)."""
    getlist = getattr(args, "getlist", None)
    raw_roles = getlist("role") if getlist else [args.get("role") or ""]
    roles = tuple(r for value in raw_roles for r in str(value).split(",") if r)
    for role in roles:
        if role not in Role.ALL:
            raise InvalidInput(f"role must be one of {', '.join(Role.ALL)}.", field="role")
    since = _date(args.get("since"), "since")
    until = _date(args.get("until"), "until")
    conversation_id = None
    if args.get("conversation"):
        try:
            conversation_id = uuid.UUID(str(args["conversation"]))
        except ValueError:
            raise InvalidInput("conversation must be an id.", field="conversation") from None
    return Filters(
        roles=roles,
        model=(args.get("model") or "").strip() or None,
        since=since,
        until=until + timedelta(days=1) if until else None,
        conversation_id=conversation_id,
        **(
            organising_filters(user, args.get("project"), args.get("tag"))
            if user is not None
            else {}
        ),
    )


def user_models(user: User) -> list[str]:
    """The distinct models of the user's conversations, for the model filter's suggestions."""
    return list(
        db.session.scalars(
            select(Conversation.model)
            .where(Conversation.user_id == user.id, Conversation.deleted_at.is_(None))
            .distinct()
            .order_by(Conversation.model)
        )
    )
