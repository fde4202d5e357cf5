"""axe-core in the browser tests: inject the vendored ``axe.min.js`` (tests/browser/vendor/) into a
page and run it, as ``@axe-core/playwright`` does for Node.

The source goes in through ``page.evaluate`` (the DevTools protocol's Runtime.evaluate), which
the page's CSP (``script-src 'self'``) does not apply to, so the pages are checked under their
real policy.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2 levels A and AA, and axe's best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
SERIOUS = ("serious", "critical")


def axe_run(page: Page) -> list[dict]:
    """The violations axe-core finds on the page as it is now: ``[{"id", "impact", "help",
    "nodes": [target selectors]}]``."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, { runOnly: { type: 'tag', values: tags } });
            return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(' ')) }));
        }""",
        TAGS,
    )
    return list(result)


def serious(violations: list[dict]) -> list[dict]:
    """The violations of serious or critical impact."""
    return [v for v in violations if v["impact"] in SERIOUS]
