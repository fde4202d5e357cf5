"""Import and export throughput, and the memory an export holds, on SQLite and PostgreSQL.

Import: a generated Claude Code projects folder (``--sessions`` sessions of 125 turns: prompt,
assistant text with a Bash ``tool_use`` — two lines of one ``message.id`` —, the ``tool_result``,
the final answer; 4 messages and 5 lines a turn, in Claude Code 2.1's line format) through the
functions ``flask import claude-code`` calls; then a generated ChatGPT ``conversations.json``
(``--chats`` conversations of 100 visible messages, 1 turn in 10 a browsing call and its
result) through ``flask import chatgpt``'s. Messages per second include parsing, the search
triggers, and rendering each message's HTML once.

Export: the imported ChatGPT history (100 messages a conversation) as the streamed ZIP of JSON
files and as NDJSON, and one conversation of ``--long`` messages (``flask seed``) as JSON and
Markdown; messages per second and output MB/s from an untraced run, then the peak of Python
memory allocated during the export (tracemalloc, a second run). Prints Markdown tables. Stops by
itself.

Usage::

    .venv/bin/python -m bench.porting_bench [--db sqlite,postgres] [--sessions 200]
        [--chats 1000] [--long 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from webchat.extensions import db
from webchat.models import Conversation, Message, User
from webchat.porting import chatgpt, claude_code, export
from webchat.porting.report import ImportReport
from webchat.seed import seed

from .common import bench_app
from .search_bench import Texts
from .stream_server import fresh_database

TURNS = 125  # per Claude Code session
PER_CHAT = 100  # visible messages per ChatGPT conversation


def claude_code_folder(folder: Path, sessions: int, texts: Texts) -> tuple[list[Path], int]:
    """Write ``sessions`` session files under ``folder/-home-ada-project/``; returns them and
    the number of lines."""
    project = folder / "-home-ada-project"
    project.mkdir(parents=True)
    paths, lines_written = [], 0
    start = datetime(2025, 6, 1, tzinfo=UTC)
    for s in range(sessions):
        session = str(uuid.UUID(int=random.getrandbits(128)))
        base = {"sessionId": session, "cwd": "/home/ada/project", "gitBranch": "main",
                "version": "2.1.14", "userType": "external", "isSidechain": False}  # fmt: skip
        at = start + timedelta(days=s)
        parent = None
        lines = [{"type": "queue-operation", "operation": "dequeue", "sessionId": session,
                  "timestamp": at.isoformat()}]  # fmt: skip

        def line(kind: str, message: dict, lines=lines, base=base) -> None:
            nonlocal parent, at
            at += timedelta(seconds=3)
            uid = str(uuid.uuid4())
            lines.append({**base, "type": kind, "uuid": uid, "parentUuid": parent,
                          "timestamp": at.isoformat().replace("+00:00", "Z"),
                          "message": message})  # fmt: skip
            parent = uid

        for t in range(TURNS):
            line("user", {"role": "user", "content": texts.text()})
            mid = f"msg_{s}_{t}_a"
            usage = {"input_tokens": 3, "output_tokens": 40}
            call = f"toolu_{s}_{t}"
            text_block = {"type": "text", "text": texts.text()}
            tool_block = {"type": "tool_use", "id": call, "name": "Bash",
                          "input": {"command": f"grep -r {texts.text().split()[0]} ."}}  # fmt: skip
            for block in (text_block, tool_block):
                line("assistant", {"id": mid, "type": "message", "role": "assistant",
                                   "model": "claude-opus-4-5", "content": [block],
                                   "usage": usage})  # fmt: skip
            result = {"type": "tool_result", "tool_use_id": call, "content": texts.text()}
            line("user", {"role": "user", "content": [result]})
            line("assistant", {"id": f"msg_{s}_{t}_b", "type": "message", "role": "assistant",
                               "model": "claude-opus-4-5",
                               "content": [{"type": "text", "text": texts.text()}],
                               "usage": usage})  # fmt: skip
        path = project / f"{session}.jsonl"
        path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        paths.append(path)
        lines_written += len(lines)
    return paths, lines_written


def chatgpt_export(path: Path, chats: int, texts: Texts) -> int:
    """Write a ``conversations.json`` of ``chats`` conversations of about :data:`PER_CHAT`
    messages (a browsing turn has three); returns the number of mapping nodes."""
    conversations, nodes = [], 0
    start = 1_700_000_000.0
    for c in range(chats):
        mapping: dict[str, dict] = {"root": {"id": "root", "message": None, "parent": None,
                                             "children": []}}  # fmt: skip
        parent, when = "root", start + c * 86_400

        def node(role: str, content: dict, recipient="all", name=None, mapping=mapping):
            nonlocal parent, when
            when += 7
            nid = str(uuid.uuid4())
            mapping[nid] = {"id": nid, "parent": parent, "children": [], "message": {
                "id": nid, "author": {"role": role, "name": name}, "create_time": when,
                "content": content, "status": "finished_successfully", "recipient": recipient,
                "metadata": {"model_slug": "gpt-4o"} if role != "user" else {}}}  # fmt: skip
            mapping[parent]["children"].append(nid)
            parent = nid

        for i in range(PER_CHAT // 2):
            node("user", {"content_type": "text", "parts": [texts.text()]})
            if i % 10 == 9:  # a browsing turn: the call, its result (and no answer text)
                code = f'search("{texts.text()[:40]}")'
                node("assistant", {"content_type": "code", "text": code}, "browser")
                node("tool", {"content_type": "tether_browsing_display",
                              "result": texts.text()}, name="browser")  # fmt: skip
                continue
            node("assistant", {"content_type": "text", "parts": [texts.text()]})
        nodes += len(mapping)
        conversations.append({"id": str(uuid.uuid4()), "title": texts.text()[:40],
                              "create_time": start + c * 86_400, "update_time": when,
                              "current_node": parent, "mapping": mapping,
                              "default_model_slug": "gpt-4o"})  # fmt: skip
    path.write_text(json.dumps(conversations), encoding="utf-8")
    return nodes


def messages_stored() -> int:
    return db.session.scalar(select(func.count()).select_from(Message))


def timed_export(chunks: Callable[[], Iterable]) -> tuple[float, int, int]:
    """(seconds, bytes) of consuming ``chunks()`` untraced, and the peak of Python memory
    allocated while consuming it again under tracemalloc (bytes)."""
    started = time.perf_counter()
    size = sum(len(c) for c in chunks())
    seconds = time.perf_counter() - started
    db.session.rollback()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for _chunk in chunks():
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    db.session.rollback()
    return seconds, size, peak - base


def run(kind: str, sessions: int, chats: int, long: int) -> None:
    texts = Texts(seed=7)
    folder = Path(tempfile.mkdtemp(prefix="webchat-porting-bench-"))
    paths, lines = claude_code_folder(folder / "projects", sessions, texts)
    export_file = folder / "conversations.json"
    nodes = chatgpt_export(export_file, chats, texts)
    with fresh_database(kind, folder) as url:
        app = bench_app(url, folder)
        with app.app_context():
            users = []
            for email in ("ada@example.com", "bob@example.com"):
                user = User(email=email)
                user.set_password("correct horse")
                db.session.add(user)
                users.append(user)
            db.session.commit()
            ada, bob = users
            print(f"\n### {kind}: import\n")
            print("| source | files | lines / nodes | conversations | messages | seconds | "
                  "messages/s |")  # fmt: skip
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            started = time.perf_counter()
            total = ImportReport(format="claude-code")
            for _path, report in claude_code.import_paths(ada, paths):
                total.merge(report)
            seconds = time.perf_counter() - started
            print(f"| Claude Code folder | {len(paths)} | {lines:,} | "
                  f"{total.conversations_created:,} | {total.messages:,} | {seconds:.1f} | "
                  f"{total.messages / seconds:,.0f} |")  # fmt: skip
            started = time.perf_counter()
            with open(export_file, "rb") as f:
                report = chatgpt.import_file(bob, f)
            seconds = time.perf_counter() - started
            print(f"| ChatGPT conversations.json ({export_file.stat().st_size / 1e6:.0f} MB) | 1 "
                  f"| {nodes:,} | {report.conversations_created:,} | {report.messages:,} | "
                  f"{seconds:.1f} | {report.messages / seconds:,.0f} |")  # fmt: skip
            again = time.perf_counter()
            for _path, _report in claude_code.import_paths(ada, paths):
                pass
            print(f"\nimporting the same folder again (nothing new): "
                  f"{time.perf_counter() - again:.1f} s\n")  # fmt: skip

            (long_id,) = seed(ada, messages=long, random_seed=6)
            db.session.commit()
            conversation = db.session.get(Conversation, long_id)
            bob_messages = db.session.scalar(
                select(func.count())
                .select_from(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.user_id == bob.id)
            )
            print(f"### {kind}: export (streamed)\n")
            print("| export | messages | output MB | seconds | messages/s | MB/s | "
                  "peak Python memory MB |")  # fmt: skip
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            cases = [
                (f"ZIP of all ({chats:,} conversations)", bob_messages,
                 lambda: export.zip_chunks(bob)),
                ("NDJSON of all", bob_messages, lambda: export.ndjson_chunks(bob)),
                (f"one conversation of {long:,}, JSON", long,
                 lambda: export.json_chunks(db.session.get(Conversation, conversation.id))),
                (f"one conversation of {long:,}, Markdown", long,
                 lambda: export.markdown_chunks(db.session.get(Conversation, conversation.id))),
            ]  # fmt: skip
            for label, count, chunks in cases:
                seconds, size, peak = timed_export(chunks)
                print(f"| {label} | {count:,} | {size / 1e6:.1f} | {seconds:.1f} | "
                      f"{count / seconds:,.0f} | {size / 1e6 / seconds:.1f} | "
                      f"{peak / 1e6:.1f} |")  # fmt: skip
            print(f"\n({messages_stored():,} messages stored at the end)")
            db.session.remove()
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--long", type=int, default=100_000)
    args = parser.parse_args()
    random.seed(6)
    for kind in args.db.split(","):
        run(kind, args.sessions, args.chats, args.long)


if __name__ == "__main__":
    main()
