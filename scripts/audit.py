"""Lighthouse audit of webchat, signed in, on a phone: ``make audit``.

Usage: .venv/bin/python scripts/audit.py [--runs N]
Starts webchat under gunicorn on a throw-away SQLite database seeded as for the screenshots
(scripts/screenshots.py: one account, a conversation with code, a table and versions), signs in,
and runs Lighthouse 12.2.3 (npm, pinned in scripts/lighthouse/package-lock.json; ``make audit``
installs it with ``npm ci``) against Debian's Chromium on the home page, a conversation page
and the search page, with Lighthouse's default mobile emulation (Moto G Power, 4G throttling
simulated). Prints each page's performance, accessibility and best-practices scores, the audits
that failed, and the text-compression and minification audits. The performance score is a
timing: it is written down in docs/performance.md, never asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.screenshots import seed  # noqa: E402
from tests.browser.conftest import CHROMIUM, Server  # noqa: E402

LIGHTHOUSE = ROOT / "scripts" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices")
WATCHED = ("uses-text-compression", "unminified-css", "unminified-javascript")


def signed_in(base: str) -> tuple[str, str]:
    """Sign in as the seeded account: (the Cookie header, the conversation page's path)."""
    http = requests.Session()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', http.get(base + "/login", timeout=10).text)
    assert token, "no CSRF token on /login"
    form = {"email": "ada@example.com", "password": "correct horse", "csrf_token": token[1]}
    http.post(base + "/login", data=form, timeout=10)
    home = http.get(base + "/", timeout=10).text
    link = re.search(r'href="(/c/[0-9a-f-]{36})"[^>]*>\s*<span class="title">Streaming SSE', home)
    assert link, "the seeded conversation is not in the sidebar"
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    return cookie, link[1]


def lighthouse(url: str, cookie: str, out: Path) -> dict:
    """Run Lighthouse on ``url`` with ``cookie``; its JSON report."""
    subprocess.run(
        [str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={out}",
         f"--only-categories={','.join(CATEGORIES)}", f"--chrome-path={CHROMIUM}",
         "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
         "--extra-headers=" + json.dumps({"Cookie": cookie})],
        check=True,
    )  # fmt: skip
    return json.loads(out.read_text())


def failing(report: dict) -> list[str]:
    """The audits of the three categories that did not pass, as "id (score)"."""
    ids = {ref["id"] for c in CATEGORIES for ref in report["categories"][c]["auditRefs"]}
    out = []
    for audit_id in sorted(ids):
        audit = report["audits"][audit_id]
        if audit["scoreDisplayMode"] in ("binary", "numeric", "metricSavings") and (
            audit["score"] is not None and audit["score"] < 0.9
        ):
            out.append(f"{audit_id} ({audit['score']:.2f})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per page (median is shown)")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        sys.exit(f"{LIGHTHOUSE} is missing: cd scripts/lighthouse && npm ci")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = Server(folder, WEBCHAT_TITLE_GENERATION="false")
        seed(folder, server.env["WEBCHAT_DATABASE_URL"])
        server.start()
        try:
            cookie, conversation = signed_in(server.url)
            pages = {"home": "/", "conversation": conversation, "search": "/search?q=stream"}
            rows = []
            for name, path in pages.items():
                scores: list[dict[str, int]] = []
                report: dict = {}
                for run in range(args.runs):
                    report = lighthouse(server.url + path, cookie, folder / f"{name}-{run}.json")
                    scores.append(
                        {c: round(report["categories"][c]["score"] * 100) for c in CATEGORIES}
                    )
                median = {c: sorted(s[c] for s in scores)[len(scores) // 2] for c in CATEGORIES}
                watched = {a: report["audits"][a]["score"] for a in WATCHED}
                rows.append((name, median, failing(report), watched))
        finally:
            server.stop()
    print(f"Lighthouse 12.2.3, mobile emulation, {CHROMIUM}, median of {args.runs} run(s)\n")
    print("| page | performance | accessibility | best practices |")
    print("| --- | --- | --- | --- |")
    for name, median, _, _ in rows:
        print(f"| {name} | " + " | ".join(str(median[c]) for c in CATEGORIES) + " |")
    print()
    for name, _, failed, watched in rows:
        print(f"{name}: compression and minification {watched}")
        print(f"{name}: failing audits (last run): {', '.join(failed) or 'none'}")


if __name__ == "__main__":
    main()
