"""Typed helpers for htmx response headers (htmx 2.0 "Response Headers" reference).

htmx-flask 0.1.0 covers request attributes (``request.htmx``) well, but its ``make_response``
rejects ``reswap="afterbegin"``/``"beforebegin"`` (a missing comma in its constant), so webchat
sets the few response headers it needs here.
"""

from __future__ import annotations

from flask import Response

SWAP_STYLES = frozenset(
    {
        "innerHTML",
        "outerHTML",
        "beforebegin",
        "afterbegin",
        "beforeend",
        "afterend",
        "delete",
        "none",
    }
)


def retarget(response: Response, selector: str, swap: str = "innerHTML") -> Response:
    """Send the response's HTML to ``selector`` with swap style ``swap`` instead of the
    requester's own target. Raises ``ValueError`` for an unknown swap style."""
    if swap.split(" ", 1)[0] not in SWAP_STYLES:
        raise ValueError(f"unknown hx-swap style {swap!r}")
    response.headers["HX-Retarget"] = selector
    response.headers["HX-Reswap"] = swap
    return response


def redirect(response: Response, url: str) -> Response:
    """Make htmx load ``url`` as a full page (``HX-Redirect``)."""
    response.headers["HX-Redirect"] = url
    return response


def vary(response: Response) -> Response:
    """Mark a response that differs for htmx requests (``Vary: HX-Request``), for caches."""
    response.vary.add("HX-Request")
    return response
