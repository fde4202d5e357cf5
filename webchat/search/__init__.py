"""Search over a user's conversation titles and messages (tool calls and results included).

:func:`search` is the one query function (SQLite FTS5 or PostgreSQL full-text search, chosen by
the database in use); ``bp`` serves the results page.
"""

from .query import BadCursor, Filters, Hit, Results, parse_filters, search
from .views import bp

__all__ = ["BadCursor", "Filters", "Hit", "Results", "bp", "parse_filters", "search"]
