"""The built-in tools: the current date and time, arithmetic, and searching the user's own
conversations. Each is safe to offer any model: no file, network or code access.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from ..extensions import db
from ..models import Conversation, Message, Role
from . import Tool, ToolContext, ToolError

# --- current_datetime ------------------------------------------------------------------------


def current_datetime(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Now in ``timezone`` (an IANA name, default UTC): ISO 8601 text, weekday, Unix seconds."""
    name = arguments.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown time zone {name!r}; use an IANA name like Europe/Paris") from None
    now = datetime.now(UTC).astimezone(zone)
    return {
        "datetime": now.isoformat(timespec="seconds"),
        "timezone": str(name),
        "weekday": now.strftime("%A"),
        "unix": int(now.timestamp()),
    }


# --- calculate -------------------------------------------------------------------------------

EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_INT_BITS = 4_096  # larger integer intermediates are refused (no CPU burnt on 9**9**9)

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _too_big(value: Any) -> bool:
    return isinstance(value, int) and value.bit_length() > MAX_INT_BITS


def _evaluate(node: ast.AST) -> Any:
    """Evaluate a parsed expression of numbers, + - * / // % **, unary signs, the constants
    and the functions above; anything else raises :class:`ToolError`."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if (
            isinstance(node.op, ast.Pow)
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and left.bit_length() * right > MAX_INT_BITS
        ):
            raise ToolError("the result would be too large")
        value = _BINARY[type(node.op)](left, right)
        if _too_big(value):
            raise ToolError("the result would be too large")
        return value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*(_evaluate(a) for a in node.args))
    raise ToolError(f"not allowed in an expression: {ast.unparse(node)!r}")


def calculate(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Evaluate an arithmetic ``expression`` with Python's own parser (``ast``), never ``eval``."""
    expression = str(arguments.get("expression", ""))
    if not expression.strip():
        raise ToolError("the expression is empty")
    if len(expression) > EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ToolError(f"cannot parse {expression!r}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError("the expression is too long")
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise ToolError(f"cannot compute it: {exc}") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return {"expression": expression, "result": value}


# --- search_conversations --------------------------------------------------------------------

SNIPPET_CHARS = 240


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _snippet(content: str, query: str) -> str:
    at = content.lower().find(query.lower())
    start = max(0, at - SNIPPET_CHARS // 3) if at >= 0 else 0
    text = content[start : start + SNIPPET_CHARS]
    return ("…" if start else "") + text + ("…" if start + SNIPPET_CHARS < len(content) else "")


def search_conversations(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """The user's messages (user and assistant) in their other conversations that contain
    ``query`` (case-insensitive), newest first, at most ``limit`` (1–20, default 5).

    A plain ``LIKE`` over the user's own rows: the full-text search of :mod:`webchat.search` can
    replace it without changing the tool's contract.
    """
    query = str(arguments.get("query", "")).strip()
    if not query:
        raise ToolError("the query is empty")
    try:
        limit = max(1, min(20, int(arguments.get("limit") or 5)))
    except (TypeError, ValueError):
        raise ToolError("limit must be a number from 1 to 20") from None
    rows = db.session.execute(
        select(
            Message.conversation_id,
            Conversation.title,
            Message.role,
            Message.content,
            Message.created_at,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.user_id == context.user_id,
            Conversation.deleted_at.is_(None),
            Conversation.id != context.conversation_id,
            Message.role.in_((Role.USER, Role.ASSISTANT)),
            Message.content.ilike(f"%{_escape_like(query)}%", escape="\\"),
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    ).all()
    return {
        "query": query,
        "matches": [
            {
                "conversation_id": str(row.conversation_id),
                "conversation_title": row.title,
                "role": row.role,
                "created_at": row.created_at.isoformat(timespec="seconds"),
                "snippet": _snippet(row.content, query),
            }
            for row in rows
        ],
    }


BUILTIN_TOOLS = [
    Tool(
        name="current_datetime",
        description="The current date and time, in UTC or in a given IANA time zone.",
        parameters={
            "type": "object",
            "properties": {
                "timezone": {
                    "type": "string",
                    "description": "IANA time zone name such as Europe/Paris; default UTC.",
                }
            },
        },
        function=current_datetime,
    ),
    Tool(
        name="calculate",
        description=(
            "Evaluate an arithmetic expression exactly: numbers, + - * / // % ** (or ^), "
            "parentheses, pi, e, and sqrt, exp, log, log10, log2, sin, cos, tan, asin, acos, "
            "atan, floor, ceil, abs, round, min, max."
        ),
        parameters={
            "type": "object",
            "properties": {
                "expression": {"type": "string", "description": "For example (1231 * 2331) / 7"}
            },
            "required": ["expression"],
        },
        function=calculate,
    ),
    Tool(
        name="search_conversations",
        description=(
            "Search the user's other conversations in this app for messages containing a "
            "phrase; returns conversation titles and snippets, newest first."
        ),
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Text to look for (case-insensitive)."},
                "limit": {"type": "integer", "description": "At most this many matches (1-20)."},
            },
            "required": ["query"],
        },
        function=search_conversations,
    ),
]
