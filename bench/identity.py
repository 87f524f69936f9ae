"""Cost of identity at the server: JWT verification per connect, policy + quotas + audit per call.

Two measurements, both in one run on this machine:

1. in-process micro timings (µs): ``JWTAuth.authenticate`` for HS256 / RS256 / ES256 tokens next
   to ``TokenAuth``; and the per-call work the server adds (the ``smcp_tools`` allow-list, a
   policy hook, the quota counters, the audit listener building a record, and the audit thread
   writing it), measured as CPU per call (the event loop's thread, and the whole process);
2. end to end: ``smcp-server`` in a subprocess, once with ``--token`` and once with
   ``--jwt-secret-file`` + an agent token with ``smcp_tools`` + ``--audit-log`` +
   ``--calls-per-second``; raw python-socketio Agent and Computer drive ``client:tool_call`` with
   ``--concurrency`` in flight; server CPU (utime+stime from /proc) per call, and the ratio.

    python bench/identity.py [--calls 4000] [--concurrency 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import socketio
from common import Probe  # a sibling: this script's folder is sys.path[0]

from smcp.server.core import (
    AuditTrail,
    FileSink,
    JWTAuth,
    Principal,
    ServerSettings,
    TokenAuth,
    issue_token,
)
from smcp.server.core._calls import FinishedCall
from smcp.server.core._metrics import ServerMetrics
from smcp.server.core._policy import check_request
from smcp.server.core._quotas import Quotas
from smcp.server.core._registry import Session

SECRET = "bench-secret-0123456789abcdef0123456789"
NS = "/smcp"


def _us(seconds: float, n: int) -> float:
    return round(seconds / n * 1e6, 2)


async def _verify_us(auth: Any, token: str, n: int) -> float:
    """CPU µs per verification (process time: wall time is meaningless on a loaded machine)."""
    payload: dict[str, Any] = {"token": token}
    await auth.authenticate(payload, {})
    start = time.process_time()
    for _ in range(n):
        await auth.authenticate(payload, {})
    return _us(time.process_time() - start, n)


async def micro(n: int) -> dict[str, float]:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    out: dict[str, float] = {}
    out["token_auth_us"] = await _verify_us(
        TokenAuth("shared-token-0123456789"), "shared-token-0123456789", n
    )
    out["jwt_hs256_us"] = await _verify_us(
        JWTAuth(secret=SECRET), issue_token(SECRET, sub="a", role="agent", offices=["o1"]), n
    )
    claims = {"sub": "a", "smcp_role": "agent", "smcp_offices": ["o1"], "exp": int(time.time()) + 3600}
    for name, key, alg in (
        ("jwt_rs256_us", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        ("jwt_es256_us", ec.generate_private_key(ec.SECP256R1()), "ES256"),
    ):
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        out[name] = await _verify_us(JWTAuth(public_key=pem.decode()), jwt.encode(claims, key, alg), n)

    # per call: allow-list + policy hook + quotas + the audit listener and its writer thread
    principal = Principal("alice", role="agent", tools=("get_*", "echo"), personal=True)
    session = Session("sid1", "0.4.0", principal, "agent", "alice", "o1")
    data = {
        "agent": "alice",
        "req_id": "r1",
        "computer": "comp1",
        "tool_name": "echo",
        "params": {"text": "hello", "n": 3},
        "timeout": 5,
    }
    reply = {"content": [{"type": "text", "text": "hello"}], "isError": False}

    def policy(p: Principal, office: str, event: str, request: dict[str, Any]) -> bool:
        return not request["tool_name"].startswith("delete")

    metrics = ServerMetrics()
    quotas = Quotas(ServerSettings(calls_per_second=1e9), metrics)
    with tempfile.TemporaryDirectory() as tmp:
        trail = AuditTrail(FileSink(Path(tmp) / "audit.jsonl"), queue_size=n + 10)
        trail.metrics = metrics

        async def one() -> None:
            await check_request(principal, "o1", "client:tool_call", data, policy)
            quotas.begin_call("sid1", "alice", "client:tool_call")
            quotas.end_call("sid1", "alice")
            trail.on_call(
                FinishedCall(
                    "client:tool_call",
                    "sid1",
                    session,
                    req=None,
                    data=data,
                    reply=reply,
                    outcome="ok",
                    started=time.time(),
                    duration=0.001,
                )
            )

        await one()
        assert trail.drain(10)
        cpu0, thread0 = time.process_time(), time.thread_time()
        for _ in range(n):
            await one()
        loop_cpu = time.thread_time() - thread0
        assert trail.drain(60)
        cpu = time.process_time() - cpu0
        trail.close()
    out["policy_quota_audit_loop_cpu_us_per_call"] = _us(loop_cpu, n)
    out["policy_quota_audit_cpu_us_per_call"] = _us(cpu, n)
    return out


# -- end to end --------------------------------------------------------------------------------


async def _start(args: list[str]) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smcp.server.asgi.cli", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        while not (line := (await proc.stdout.readline()).decode()).startswith("LISTENING "):
            if not line:
                raise RuntimeError("smcp-server exited early")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


async def _client(url: str, token: str, role: str, name: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    if role == "computer":

        async def on_call(data: Any) -> Any:
            return {"content": [{"type": "text", "text": "ok"}], "isError": False}

        sio.on("client:tool_call", on_call, namespace=NS)
    await sio.connect(
        f"{url}?a2c_version=0.4.0",
        auth={"token": token},
        namespaces=[NS],
        transports=["websocket"],
        wait_timeout=10,
    )
    ack = await sio.call("server:join_office", {"role": role, "name": name, "office_id": "o1"}, namespace=NS)
    assert list(ack) == [True, None], ack
    return sio


async def _drive(url: str, tokens: tuple[str, str], calls: int, concurrency: int, pid: int) -> float:
    agent_token, computer_token = tokens
    comp = await _client(url, computer_token, "computer", "comp1")
    agent = await _client(url, agent_token, "agent", "alice")
    probe = Probe(pid)
    data = {
        "agent": "alice",
        "computer": "comp1",
        "tool_name": "echo",
        "params": {"text": "hi"},
        "timeout": 10,
    }
    counter = iter(range(calls + 10 * concurrency))

    async def worker(k: int) -> None:
        for i in counter:
            if i >= k:
                return
            reply = await agent.call(
                "client:tool_call", {**data, "req_id": f"r{i}"}, namespace=NS, timeout=30
            )
            assert "code" not in reply, reply

    await asyncio.gather(*(worker(concurrency * 5) for _ in range(concurrency)))  # warm-up
    counter = iter(range(calls))
    await probe.wait_idle()
    cpu0 = probe.cpu_s() or 0.0
    await asyncio.gather(*(worker(calls) for _ in range(concurrency)))
    cpu = (probe.cpu_s() or 0.0) - cpu0
    await agent.disconnect()
    await comp.disconnect()
    return cpu / calls * 1e6


async def end_to_end(calls: int, concurrency: int, tmp: Path) -> dict[str, float]:
    secret = tmp / "secret"
    secret.write_text(SECRET)
    out: dict[str, float] = {}
    proc, url = await _start(["--token", "bench-token"])
    try:
        assert proc.pid
        out["baseline_server_cpu_us_per_call"] = round(
            await _drive(url, ("bench-token", "bench-token"), calls, concurrency, proc.pid), 1
        )
    finally:
        proc.kill()
        await proc.wait()
    audit = tmp / "audit.jsonl"
    secured = ["--jwt-secret-file", str(secret), "--audit-log", str(audit), "--calls-per-second", "1000000"]
    proc, url = await _start(secured)
    try:
        assert proc.pid
        agent_token = issue_token(SECRET, sub="alice", role="agent", offices=["o1"], tools=["get_*", "echo"])
        computer_token = issue_token(SECRET, sub="box", role="computer", offices=["o1"], name="comp1")
        out["secured_server_cpu_us_per_call"] = round(
            await _drive(url, (agent_token, computer_token), calls, concurrency, proc.pid), 1
        )
    finally:
        proc.kill()
        await proc.wait()
    audit.unlink(missing_ok=True)
    return out


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--micro", type=int, default=5000, help="iterations of each micro timing")
    args = p.parse_args()
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            row = await micro(args.micro)
            row.update(await end_to_end(args.calls, args.concurrency, Path(tmp)))
            row["added_cpu_us_per_call"] = round(
                row["secured_server_cpu_us_per_call"] - row["baseline_server_cpu_us_per_call"], 1
            )
            row["added_share_of_server_cpu"] = round(
                row["added_cpu_us_per_call"] / row["baseline_server_cpu_us_per_call"], 3
            )
            runs.append(row)
            print({k: v for k, v in row.items()}, flush=True)
    setup = f"{os.cpu_count()} CPUs, {args.calls} calls, {args.concurrency} in flight"
    print(f"\nmedian of {args.repeat} runs ({setup}):")
    for key in runs[0]:
        print(f"  {key:42s} {statistics.median(r[key] for r in runs)}")


if __name__ == "__main__":
    asyncio.run(main())
