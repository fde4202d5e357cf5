"""Markdown → sanitized HTML, the one way webchat renders message content.

CommonMark with tables and strikethrough (markdown-it-py), fenced code highlighted by Pygments
(CSS classes, no inline styles), then sanitized by nh3 (ammonia) against an allow-list, so model
output can never inject script, styles or event handlers (nor need an inline style, which the
Content-Security-Policy refuses). Links open in a new tab with
``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True, classprefix="hl-")


def _highlight(code: str, lang: str, _attrs: str) -> str:
    if not lang:
        return ""  # markdown-it escapes it itself
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    return highlight(code, lexer, _FORMATTER)


def _align_by_class(state) -> None:
    """Table cells say their alignment with a class (``align-right``), not a ``style``
    attribute, which the Content-Security-Policy (no inline styles) would refuse."""
    for token in state.tokens:
        if token.type in ("th_open", "td_open") and token.attrs.get("style"):
            align = str(token.attrs.pop("style")).removeprefix("text-align:")
            if align in ("left", "center", "right"):
                token.attrSet("class", f"align-{align}")


_MD = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
    .enable("table")
    .enable("strikethrough")
)
_MD.core.ruler.push("align_by_class", _align_by_class)

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "span": {"class"},
    "pre": {"class"},
    "td": {"class"},
    "th": {"class"},
    "ol": {"start"},
}


def render_markdown(text: str) -> str:
    """Render ``text`` (CommonMark + tables) to sanitized HTML; raw HTML in it is escaped."""
    return nh3.clean(
        _MD.render(text),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )


def render_plain(text: str) -> str:
    """Escape ``text`` for HTML, keeping it as plain text (for streaming deltas)."""
    return html.escape(text, quote=False)
