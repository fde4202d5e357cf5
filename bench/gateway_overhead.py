"""What the recording gateway adds: the same recorded stream, called directly and through webchat.

A loopback upstream (``tests.fakes.upstream``) replays a recorded OpenAI chat-completions stream
(``../shared/fixtures/openai/openai-text.chunks.txt``, 302 chunks) with ``--pause-ms`` between
chunks. The official ``openai`` SDK calls it directly, then through webchat's
``/v1/chat/completions`` served by real gunicorn (gevent) with model ``openai/gpt-4o-mini``
pointed at that upstream, alternately, ``--runs`` times each. Every gateway call is stored as a
new conversation; after the runs, each stored reply is compared with the text its client
received.

Prints, for direct and gateway: time to first token (first non-empty ``delta.content``) and total
time (to ``[DONE]``) at p50 / p90 / max, in ms; then what the gateway adds at p50 and the ratio
of total times. Also the same stream without pauses, read whole: directly (streamed, as webchat
itself reads its upstream) and through the gateway not streamed (webchat waits for the stored
reply and answers one ``chat.completion``).

Usage::

    .venv/bin/python -m bench.gateway_overhead [--db sqlite|postgres] [--runs 30] [--pause-ms 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai
from sqlalchemy import select

from webchat.api.tokens import create_token
from webchat.extensions import db
from webchat.models import Message, Role, User

from .common import bench_app, percentile, table
from .stream_server import REDIS_URL, Gunicorn, fresh_database

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT.parent / "shared" / "fixtures" / "openai" / "openai-text.chunks.txt"
MODEL = "openai/gpt-4o-mini"


def timed_stream(client: openai.OpenAI, model: str) -> tuple[float, float, str]:
    """One streamed completion: (ms to the first text, ms in all, the text received)."""
    start = time.perf_counter()
    first = None
    text = []
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say something"}], stream=True
    )
    for chunk in stream:
        piece = chunk.choices[0].delta.content if chunk.choices else None
        if piece:
            if first is None:
                first = time.perf_counter()
            text.append(piece)
    end = time.perf_counter()
    assert first is not None, "no text arrived"
    return (first - start) * 1000, (end - start) * 1000, "".join(text)


def timed_whole(client: openai.OpenAI, model: str, stream: bool) -> float:
    """One completion of the unpaced stream, read to its end: ms in all. webchat always streams
    from its upstream, so the direct call streams and the gateway's is not streamed."""
    start = time.perf_counter()
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}], stream=stream
    )
    if stream:
        for _chunk in answer:
            pass
    return (time.perf_counter() - start) * 1000


def row(name: str, values: list[float]) -> list[str]:
    return [
        name,
        f"{statistics.median(values):.1f}",
        f"{percentile(values, 90):.1f}",
        f"{max(values):.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pause-ms", type=float, default=5.0, help="ms between two chunks")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.fakes.upstream import FakeUpstream, chunk_file_reply

    reply = chunk_file_reply(FIXTURE)
    reply.pause = args.pause_ms / 1000
    whole = chunk_file_reply(FIXTURE)
    with (
        FakeUpstream() as upstream,
        tempfile.TemporaryDirectory() as tmp,
        fresh_database(args.db, Path(tmp)) as url,
    ):
        env = {
            "WEBCHAT_DATABASE_URL": url,
            "WEBCHAT_INSTANCE_PATH": tmp,
            "WEBCHAT_SECRET_KEY": "bench",
            "WEBCHAT_OPENAI_BASE_URL": upstream.url + "/v1",
            "WEBCHAT_OPENAI_API_KEY": "sk-bench",
            "WEBCHAT_OPENAI_MODELS": f'["{MODEL.split("/", 1)[1]}"]',
            "WEBCHAT_OPENAI_LIST_MODELS": "false",
            "WEBCHAT_TITLE_GENERATION": "false",
        }
        if args.db == "postgres":
            env["WEBCHAT_REDIS_URL"] = REDIS_URL
        app = bench_app(url, tmp)
        with app.app_context():
            user = User(email="bench@example.com")
            user.set_password("correct horse battery")
            db.session.add(user)
            db.session.flush()
            _, token = create_token(user, "bench")
            db.session.commit()
        direct = openai.OpenAI(base_url=upstream.url + "/v1", api_key="sk-bench", max_retries=0)
        with Gunicorn(Path(tmp), env) as server:
            gateway = openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0)
            results: dict[str, list[tuple[float, float, str]]] = {"direct": [], "gateway": []}
            wholes: dict[str, list[float]] = {"direct": [], "gateway": []}
            for i in range(args.runs + 2):  # the first two warm both paths up, not counted
                for name, client, model in (
                    ("direct", direct, MODEL.split("/", 1)[1]),
                    ("gateway", gateway, MODEL),
                ):
                    upstream.queue(reply)
                    measured = timed_stream(client, model)
                    upstream.queue(whole)
                    total = timed_whole(client, model, stream=name == "direct")
                    if i >= 2:
                        results[name].append(measured)
                        wholes[name].append(total)
        with app.app_context():
            stored = db.session.scalars(
                select(Message.content)
                .where(Message.role == Role.ASSISTANT)
                .order_by(Message.created_at)
            ).all()
            db.engine.dispose()
    received = [text for _, _, text in results["gateway"]]
    streamed_stored = stored[4::2][
        : len(received)
    ]  # after the warm-up; every other is non-streamed
    exact = sum(a == b for a, b in zip(received, streamed_stored, strict=False))
    print(
        f"\n{args.db}, 1 gunicorn worker (gevent), {args.runs} calls each, "
        f"302 chunks {args.pause_ms:g} ms apart\n"
    )
    header = ["", "p50 ms", "p90 ms", "max ms"]
    rows = [
        row("time to first token, direct", [r[0] for r in results["direct"]]),
        row("time to first token, gateway", [r[0] for r in results["gateway"]]),
        row("total, direct (streamed)", [r[1] for r in results["direct"]]),
        row("total, gateway (streamed)", [r[1] for r in results["gateway"]]),
        row("unpaced stream, direct (streamed)", wholes["direct"]),
        row("unpaced stream, gateway (not streamed)", wholes["gateway"]),
    ]
    print(table(header, rows))
    ttft = [statistics.median([r[0] for r in results[k]]) for k in ("direct", "gateway")]
    total = [statistics.median([r[1] for r in results[k]]) for k in ("direct", "gateway")]
    plain = [statistics.median(wholes[k]) for k in ("direct", "gateway")]
    print()
    print(
        table(
            ["gateway over direct, p50", "value"],
            [
                ["time to first token added", f"{ttft[1] - ttft[0]:.1f} ms"],
                ["total time ratio (streamed)", f"{total[1] / total[0]:.3f}x"],
                ["unpaced: time added (gateway not streamed)", f"{plain[1] - plain[0]:.1f} ms"],
                ["stored replies equal to what the client received", f"{exact} / {len(received)}"],
            ],
        )
    )


if __name__ == "__main__":
    main()
