"""Markdown rendering is sanitized and keeps code as code."""

from webchat.rendering import render_markdown


def test_script_and_event_handlers_never_survive():
    html = render_markdown('<script>alert(1)</script><img src=x onerror="alert(1)">')
    assert "<script" not in html and "<img" not in html  # shown as text, never as tags


def test_javascript_links_are_dropped():
    html = render_markdown("[click](javascript:alert(1)) [ok](https://example.com)")
    assert "javascript:" not in html.split("[click]")[0] and 'href="https://example.com"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_code_blocks_stay_code_and_are_highlighted():
    html = render_markdown("```python\nprint('<b>')\n```")
    assert html.startswith("<pre><code") and "&lt;b&gt;" in html and "hl-nb" in html


def test_tables_render():
    assert "<table>" in render_markdown("| a | b |\n|---|---|\n| 1 | 2 |")
