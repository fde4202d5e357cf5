"""What an MCP tool call costs through webchat's helper process (webchat.mcp.broker).

Usage: .venv/bin/python -m bench.mcp_calls [--calls 50]
Prints one table: for the real mcp-server-time over stdio and the test suite's MCPServer over
Streamable HTTP on loopback, the first request (the helper starts, the server starts or
connects, the tool list) and then calls of a tool one after another (median, p90, max), and the
first call after the server's process died (the session restarted). Wall-clock milliseconds,
measured from the worker's side (BrokerClient.request).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from webchat.mcp.client import BrokerClient

FAKE = str(Path(__file__).resolve().parent.parent / "tests" / "fakes" / "mcp_server.py")


def timed(client: BrokerClient, payload: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = client.request(payload, 30)
    assert answer.get("ok"), answer
    return (time.perf_counter() - started) * 1000, answer


def http_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, FAKE, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return process, f"http://127.0.0.1:{port}/mcp"


def measure(name: str, server: dict, tool: str, arguments: dict, calls: int) -> list[str]:
    client = BrokerClient()
    try:
        first, _ = timed(client, {"op": "tools", "server": server})
        call = {"op": "call", "server": server, "tool": tool, "arguments": arguments}
        times = sorted(timed(client, call)[0] for _ in range(calls))
        restart = "n/a"
        if server.get("command") and tool == "echo":  # the suite's server can crash on purpose
            client.request({**call, "tool": "crash", "arguments": {}}, 30)
            restart = f"{timed(client, call)[0]:.0f}"  # the next call starts it again
        p90 = times[int(len(times) * 0.9) - 1]
        return [
            name,
            str(calls),
            f"{first:.0f}",
            f"{statistics.median(times):.1f}",
            f"{p90:.1f}",
            f"{times[-1]:.1f}",
            restart,
        ]
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    rows = [
        measure(
            "mcp-server-time (stdio)",
            {"name": "time", "command": sys.executable, "args": ["-m", "mcp_server_time"]},
            "get_current_time",
            {"timezone": "Asia/Tokyo"},
            args.calls,
        ),
        measure(
            "MCPServer echo (stdio)",
            {"name": "fake", "command": sys.executable, "args": [FAKE, "stdio"]},
            "echo",
            {"text": "hello"},
            args.calls,
        ),
    ]
    process, url = http_server()
    try:
        rows.append(
            measure(
                "MCPServer echo (Streamable HTTP)",
                {"name": "web", "url": url, "headers": {}},
                "echo",
                {"text": "hello"},
                args.calls,
            )
        )
    finally:
        process.kill()
        process.wait()
    head = ["server", "calls", "first ms", "call p50 ms", "call p90 ms", "call max ms",
            "after a crash ms"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
