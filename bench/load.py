"""Wire-level load generator: raw python-socketio clients speaking A2C-SMCP, no SDK.

One scenario per process; the result is one JSON line on stdout (progress on stderr)::

    python bench/load.py --url http://127.0.0.1:PORT --server-pid PID --scenario throughput --concurrency 16

Clients
    computer  connects (``auth={"token": T}``, ``?a2c_version=0.4.0``, polling first like the SDK),
              joins its office, answers ``client:tool_call`` with a ``CallToolResult``-shaped dict
              echoing ``params.text`` and ``client:get_tools`` with one tool.
    agent     same handshake; joins with name == office_id (the SDK convention) and sends
              ``client:tool_call``, timing each ack.

Scenarios
    latency     1 agent + 1 computer, one call in flight.
    throughput  A offices (agent + computer each), CONC calls in flight in total, fixed window.
    connscale   C computers + C agents (office i = computer i + agent i) connect and join with a
                bounded number of handshakes in flight; time, server CPU and RSS per connection.
    idle        the same population held idle for HOLD seconds; Engine.IO pings counted per client
                (each is answered with a pong by the client library); any disconnect is a failure.
    officefill  one office, 1 agent + (M-1) computers join; every join is announced to the members
                already there, so M*(M-1)/2 ``notify:enter_office`` deliveries are expected.
    broadcast   one office with K receivers (1 agent + K-1 computers) and a sender computer that
                emits ``server:update_tool_list``; time until all K got ``notify:update_tool_list``.

Server CPU and RSS come from /proc for the process tree under ``--server-pid``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import socketio
from common import (
    Probe,
    Result,
    Window,
    describe,
    error_summary,
    latency_summary,
    log,
    perf,
    raise_nofile,
)

NS = "/smcp"
TOOL_NAME = "bench__echo"


class Cfg:
    """Connection settings shared by every client of one scenario process."""

    def __init__(self, args: argparse.Namespace) -> None:
        sep = "&" if "?" in args.url else "?"
        self.url: str = f"{args.url}{sep}a2c_version={args.a2c_version}" if args.a2c_version else args.url
        self.token: str = args.token
        self.transports = [t for t in args.transports.split(",") if t]
        self.connect_timeout: float = args.connect_timeout
        self.call_timeout: float = args.call_timeout
        self.tool_timeout = int(args.tool_timeout)
        self.text = "x" * args.payload_bytes
        self.http: aiohttp.ClientSession | None = None


class Counter:
    """Counts arrivals of one notification; ``event`` fires when ``expected`` is reached."""

    def __init__(self) -> None:
        self.expected = 0
        self.count = 0
        self.times: list[float] = []
        self.event = asyncio.Event()
        self.keep_times = False

    def arm(self, expected: int, keep_times: bool = True) -> None:
        self.expected, self.count, self.times, self.keep_times = expected, 0, [], keep_times
        self.event = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.keep_times:
            self.times.append(perf())
        if self.expected and self.count >= self.expected:
            self.event.set()


class Client:
    role = ""

    def __init__(self, cfg: Cfg, name: str, office: str) -> None:
        self.cfg = cfg
        self.name = name
        self.office = office
        self.pings = 0
        self.disconnects = 0
        self.closing = False
        self.sio = socketio.AsyncClient(
            reconnection=False, logger=False, engineio_logger=False, http_session=cfg.http
        )
        self.sio.on("disconnect", self._on_disconnect, namespace=NS)

    def listen(self, event: str, counter: Counter) -> None:
        async def handler(data: Any = None) -> None:
            counter.hit()

        self.sio.on(event, handler, namespace=NS)

    def count_pings(self) -> None:
        eio = self.sio.eio
        original: Callable[[Any], Awaitable[None]] = eio._receive_packet

        async def receive(pkt: Any) -> None:
            if pkt.packet_type == 2:  # engine.io PING; the library queues the PONG itself
                self.pings += 1
            await original(pkt)

        eio._receive_packet = receive

    async def _on_disconnect(self, reason: Any = None) -> None:
        if not self.closing:
            self.disconnects += 1

    async def start(self) -> None:
        await self.sio.connect(
            self.cfg.url,
            auth={"token": self.cfg.token},
            namespaces=[NS],
            transports=self.cfg.transports,
            wait_timeout=self.cfg.connect_timeout,
        )
        ret = await self.sio.call(
            "server:join_office",
            {"role": self.role, "name": self.name, "office_id": self.office},
            namespace=NS,
            timeout=self.cfg.call_timeout,
        )
        ok = ret[0] if isinstance(ret, (list, tuple)) and ret else ret
        if ok is not True:
            raise RuntimeError(f"join_office refused for {self.name}: {ret!r}")

    async def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.disconnect(), 5)


class Computer(Client):
    role = "computer"

    def __init__(self, cfg: Cfg, name: str, office: str) -> None:
        super().__init__(cfg, name, office)
        self.sio.on("client:tool_call", self._on_tool_call, namespace=NS)
        self.sio.on("client:get_tools", self._on_get_tools, namespace=NS)

    async def _on_tool_call(self, data: dict[str, Any]) -> dict[str, Any]:
        params = data.get("params") or {}
        return {
            "meta": None,
            "content": [
                {"type": "text", "text": str(params.get("text", "")), "annotations": None, "meta": None}
            ],
            "structuredContent": None,
            "isError": False,
        }

    async def _on_get_tools(self, data: dict[str, Any]) -> dict[str, Any]:
        tool = {
            "name": TOOL_NAME,
            "bundle_id": "bench",
            "description": "echo params.text",
            "params_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
            "return_schema": None,
            "meta": {},
        }
        return {"tools": [tool], "req_id": data.get("req_id")}

    async def update_tool_list(self) -> None:
        await self.sio.emit("server:update_tool_list", {"computer": self.name}, namespace=NS)


class Agent(Client):
    role = "agent"

    def __init__(self, cfg: Cfg, office: str) -> None:
        super().__init__(cfg, office, office)
        self.seq = 0

    async def tool_call(self, computer: str) -> float:
        self.seq += 1
        text = self.cfg.text
        req = {
            "agent": self.name,
            "req_id": f"{self.name}-{self.seq}",
            "computer": computer,
            "tool_name": TOOL_NAME,
            "params": {"text": text},
            "timeout": self.cfg.tool_timeout,
        }
        t0 = perf()
        res = await self.sio.call("client:tool_call", req, namespace=NS, timeout=self.cfg.call_timeout)
        dt = perf() - t0
        content = res.get("content") if isinstance(res, dict) else None
        if not (
            isinstance(res, dict)
            and res.get("isError") is False
            and content
            and content[0].get("text") == text
        ):
            raise RuntimeError(f"bad tool_call result {res!r}"[:300])
        return dt

    async def get_tools(self, computer: str) -> Any:
        self.seq += 1
        req = {"agent": self.name, "req_id": f"{self.name}-{self.seq}", "computer": computer}
        return await self.sio.call("client:get_tools", req, namespace=NS, timeout=self.cfg.call_timeout)


async def bring_up(clients: list[Client], concurrency: int, deadline: float) -> tuple[list[float], list[str]]:
    """Connect and join every client, at most ``concurrency`` handshakes in flight."""
    sem = asyncio.Semaphore(max(1, concurrency))
    lat: list[float] = []
    errors: list[str] = []

    async def one(c: Client) -> None:
        async with sem:
            left = deadline - perf()
            if left <= 0:
                errors.append("TimeoutError: bring-up deadline passed")
                return
            t = perf()
            try:
                await asyncio.wait_for(c.start(), timeout=left)
                lat.append(perf() - t)
            except Exception as exc:
                errors.append(describe(exc))

    await asyncio.gather(*(one(c) for c in clients))
    return lat, errors


async def close_all(clients: list[Client], concurrency: int = 256) -> float:
    sem = asyncio.Semaphore(concurrency)
    t0 = perf()

    async def one(c: Client) -> None:
        async with sem:
            await c.close()

    await asyncio.gather(*(one(c) for c in clients))
    return perf() - t0


async def run_calls(
    pairs: list[tuple[Agent, str]], concurrency: int, n: int, deadline: float
) -> tuple[list[float], list[str]]:
    """``concurrency`` workers; worker i drives pairs[i % len(pairs)]; stop at ``n`` calls or deadline."""
    lat: list[float] = []
    errors: list[str] = []
    issued = 0

    async def worker(i: int) -> None:
        nonlocal issued
        agent, computer = pairs[i % len(pairs)]
        while issued < n and perf() < deadline:
            issued += 1
            try:
                lat.append(await agent.tool_call(computer))
            except Exception as exc:
                errors.append(describe(exc))

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return lat, errors


def population(cfg: Cfg, prefix: str, pairs: int) -> tuple[list[Computer], list[Agent]]:
    comps = [Computer(cfg, f"{prefix}-c{i}", f"{prefix}-o{i}") for i in range(pairs)]
    agents = [Agent(cfg, f"{prefix}-o{i}") for i in range(pairs)]
    return comps, agents


async def scn_calls(args: argparse.Namespace, cfg: Cfg, probe: Probe, prefix: str) -> Result:
    conc = args.concurrency
    n_offices = max(1, min(args.agents, conc))
    comps, agents = population(cfg, prefix, n_offices)
    everyone: list[Client] = [*comps, *agents]
    try:
        _, errs = await bring_up(everyone, 16, perf() + 30)
        if errs:
            raise RuntimeError(f"setup failed: {errs[:3]}")
        pairs = [(a, c.name) for a, c in zip(agents, comps, strict=True)]
        tools = await agents[0].get_tools(comps[0].name)
        if not (isinstance(tools, dict) and tools.get("tools")):
            raise RuntimeError(f"client:get_tools relay returned {tools!r}"[:300])
        _, werr = await run_calls(pairs, conc, args.warmup, perf() + 15)
        if werr:
            raise RuntimeError(f"warm-up errors: {werr[:3]}")
        await probe.wait_idle(3.0)
        probe.refresh()
        with Window(probe) as w:
            lat, errors = await run_calls(pairs, conc, args.n, perf() + args.seconds)
        res: Result = {
            "concurrency": conc,
            "offices": n_offices,
            "calls": len(lat),
            "calls_per_s": round(len(lat) / w.wall, 1) if w.wall else None,
            **latency_summary(lat),
            **w.metrics(ops=len(lat) or None),
            **error_summary(errors),
        }
        res["server_cpu_us_per_call"] = res.pop("server_cpu_us_per_op", None)
        res["loadgen_cpu_us_per_call"] = res.pop("loadgen_cpu_us_per_op", None)
        return res
    finally:
        await close_all(everyone)


async def scn_connscale(args: argparse.Namespace, cfg: Cfg, probe: Probe, prefix: str) -> Result:
    pairs = args.clients
    await probe.wait_idle(3.0)
    rss_before = probe.rss_kb()
    comps, agents = population(cfg, prefix, pairs)
    clients: list[Client] = [c for pair in zip(comps, agents, strict=True) for c in pair]
    res: Result = {"pairs": pairs, "connections": 2 * pairs, "connect_concurrency": args.connect_concurrency}
    try:
        with Window(probe) as w:
            lat, errors = await bring_up(clients, args.connect_concurrency, perf() + args.seconds)
        joined = len(lat)
        res.update(
            joined=joined,
            all_joined=joined == len(clients),
            time_to_all_joined_s=round(w.wall, 3),
            joins_per_s=round(joined / w.wall, 1) if w.wall else None,
            **latency_summary(lat, prefix="join_"),
            **w.metrics(),
            **error_summary(errors),
        )
        if joined and w.server_cpu is not None:
            res["server_cpu_ms_per_connection"] = round(w.server_cpu / joined * 1e3, 3)
        await probe.wait_idle(5.0)
        probe.refresh()
        rss_after = probe.rss_kb()
        if rss_before is not None and rss_after is not None:
            res["server_rss_before_mb"] = round(rss_before / 1024, 1)
            res["server_rss_after_mb"] = round(rss_after / 1024, 1)
            if joined:
                res["server_rss_kb_per_connection"] = round((rss_after - rss_before) / joined, 1)
        ok = 0
        sample = list(range(0, pairs, max(1, pairs // 10)))[:10]
        for i in sample:
            try:
                await agents[i].tool_call(comps[i].name)
                ok += 1
            except Exception as exc:
                res.setdefault("sanity_errors", describe(exc))
        res["sanity_calls_ok"] = f"{ok}/{len(sample)}"
        if ok != len(sample):
            res["errors"] = int(res.get("errors") or 0) + len(sample) - ok  # type: ignore[call-overload]
    finally:
        if args.graceful_close:
            res["teardown_s"] = round(await close_all(clients), 3)
    return res


async def scn_idle(args: argparse.Namespace, cfg: Cfg, probe: Probe, prefix: str) -> Result:
    pairs = args.clients
    await probe.wait_idle(3.0)
    rss_before = probe.rss_kb()
    comps, agents = population(cfg, prefix, pairs)
    clients: list[Client] = [c for pair in zip(comps, agents, strict=True) for c in pair]
    for c in clients:
        c.count_pings()
    res: Result = {"connections": len(clients), "hold_s": args.hold}
    try:
        t0 = perf()
        lat, errors = await bring_up(clients, args.connect_concurrency, perf() + args.seconds)
        res["bring_up_s"] = round(perf() - t0, 2)
        res.update(error_summary(errors))
        res["joined"] = len(lat)
        if errors:
            raise RuntimeError(f"{len(errors)} of {len(clients)} clients failed to join: {errors[:2]}")
        pings0 = sum(c.pings for c in clients)
        probe.refresh()
        with Window(probe) as w:
            await asyncio.sleep(args.hold)
        rss = probe.rss_kb()
        connected = sum(1 for c in clients if c.sio.connected)
        pings = sum(c.pings for c in clients) - pings0
        res.update(
            still_connected=connected,
            disconnects=sum(c.disconnects for c in clients),
            pings_during_hold=pings,
            clients_without_ping=sum(1 for c in clients if c.pings == 0),
            held_ok=connected == len(clients),
            server_cpu_util_idle=None if w.server_cpu is None else round(w.server_cpu / w.wall, 3),
        )
        if rss is not None and rss_before is not None:
            res["server_rss_before_mb"] = round(rss_before / 1024, 1)
            res["server_rss_mb"] = round(rss / 1024, 1)
            res["server_rss_kb_per_connection"] = round((rss - rss_before) / len(clients), 1)
    finally:
        if args.graceful_close:
            res["teardown_s"] = round(await close_all(clients), 3)
    return res


async def scn_officefill(args: argparse.Namespace, cfg: Cfg, probe: Probe, prefix: str) -> Result:
    members = args.members
    office = f"{prefix}-fill"
    announced = Counter()
    announced.arm(members * (members - 1) // 2, keep_times=False)
    agent = Agent(cfg, office)
    everyone: list[Client] = [agent, *(Computer(cfg, f"{prefix}-m{i}", office) for i in range(members - 1))]
    for c in everyone:
        c.listen("notify:enter_office", announced)
    res: Result = {"members": members, "expected_announcements": announced.expected}
    try:
        await probe.wait_idle(3.0)
        t0 = perf()
        with Window(probe) as w:
            lat, errors = await bring_up(everyone, args.connect_concurrency, perf() + args.seconds)
            joined_s = perf() - t0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(announced.event.wait(), timeout=max(1.0, args.seconds / 2))
        res.update(
            joined=len(lat),
            time_to_all_joined_s=round(joined_s, 3),
            office_fill_s=round(w.wall, 3),
            announcements=announced.count,
            all_announced=announced.count >= announced.expected,
            **latency_summary(lat, prefix="join_"),
            **w.metrics(),
            **error_summary(errors),
        )
        if w.server_cpu is not None:
            res["server_cpu_ms_per_member"] = round(w.server_cpu / members * 1e3, 3)
        if errors or announced.count < announced.expected:
            res["errors"] = len(errors) + (announced.expected - announced.count)
    finally:
        res["teardown_s"] = round(await close_all(everyone), 3)
    return res


async def scn_broadcast(args: argparse.Namespace, cfg: Cfg, probe: Probe, prefix: str) -> Result:
    k = args.receivers
    office = f"{prefix}-bc"
    counter = Counter()
    sender = Computer(cfg, f"{prefix}-sender", office)
    receivers: list[Client] = [
        Agent(cfg, office),
        *(Computer(cfg, f"{prefix}-r{i}", office) for i in range(k - 1)),
    ]
    for c in receivers:
        c.listen("notify:update_tool_list", counter)
    everyone = [*receivers, sender]
    res: Result = {"receivers": k}
    try:
        _, errors = await bring_up(everyone, args.connect_concurrency, perf() + args.seconds)
        if errors:
            raise RuntimeError(f"office setup failed: {errors[:3]}")
        await probe.wait_idle(5.0)
        alls: list[float] = []
        firsts: list[float] = []
        timeouts = 0
        deadline = perf() + args.seconds
        probe.refresh()
        with Window(probe) as w:
            for r in range(args.rounds + 1):  # round 0 is a warm-up
                if perf() > deadline:
                    break
                counter.arm(k)
                t0 = perf()
                await sender.update_tool_list()
                try:
                    await asyncio.wait_for(counter.event.wait(), timeout=10)
                except TimeoutError:
                    timeouts += 1
                    continue
                if r > 0:
                    alls.append(counter.times[-1] - t0)
                    firsts.append(counter.times[0] - t0)
                await asyncio.sleep(0.02)
        rounds = len(alls)
        res.update(
            rounds=rounds,
            round_timeouts=timeouts,
            errors=timeouts,
            **latency_summary(alls, prefix="all_received_"),
            first_received_p50_ms=latency_summary(firsts)["p50_ms"],
        )
        if w.server_cpu is not None and rounds:
            res["server_cpu_us_per_delivery"] = round(w.server_cpu / ((rounds + 1) * k) * 1e6, 1)
    finally:
        await close_all(everyone)
    return res


SCENARIOS = {
    "latency": scn_calls,
    "throughput": scn_calls,
    "connscale": scn_connscale,
    "idle": scn_idle,
    "officefill": scn_officefill,
    "broadcast": scn_broadcast,
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8123")
    ap.add_argument("--token", default="bench-secret")
    ap.add_argument("--a2c-version", default="0.4.0")
    ap.add_argument("--server-pid", type=int, default=0, help="PID whose process tree is measured (0: none)")
    ap.add_argument("--transports", default="polling,websocket")
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--n", type=int, default=100_000, help="call cap (latency/throughput)")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--agents", type=int, default=4, help="offices for throughput")
    ap.add_argument("--clients", type=int, default=1000, help="computer+agent pairs (connscale, idle)")
    ap.add_argument("--members", type=int, default=500, help="office size (officefill)")
    ap.add_argument("--receivers", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--connect-concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured window or deadline of the phase")
    ap.add_argument("--hold", type=float, default=60.0, help="idle hold (idle)")
    ap.add_argument("--payload-bytes", type=int, default=64)
    ap.add_argument("--connect-timeout", type=float, default=30.0)
    ap.add_argument("--call-timeout", type=float, default=30.0)
    ap.add_argument("--tool-timeout", type=float, default=30.0)
    ap.add_argument(
        "--graceful-close",
        action="store_true",
        help="connscale/idle: disconnect every client at the end (minutes for 10,000); by default the "
        "process just exits and the server, stopped next, sees the connections drop",
    )
    return ap.parse_args()


async def amain(args: argparse.Namespace) -> Result:
    cfg = Cfg(args)
    cfg.http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
    )
    probe = Probe(args.server_pid or None)
    prefix = f"b{os.getpid() % 100000}x{int(time.time() * 1000) % 100000}"
    if args.scenario == "latency":
        args.concurrency, args.agents = 1, 1
    try:
        return await SCENARIOS[args.scenario](args, cfg, probe, prefix)
    finally:
        await cfg.http.close()


def main() -> None:
    args = parse_args()
    raise_nofile()
    t0 = perf()
    try:
        out = asyncio.run(amain(args))
        out["ok"] = not out.get("errors")
        if not out["ok"]:
            out.setdefault("error", f"{out.get('errors')} errors: {out.get('first_errors')}")
    except Exception as exc:
        log(f"{args.scenario} failed: {exc!r}")
        out = {"ok": False, "error": describe(exc, 400)}
    out.update(scenario=args.scenario, total_s=round(perf() - t0, 2))
    print(json.dumps(out), flush=True)
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown of thousands of client objects


if __name__ == "__main__":
    main()
