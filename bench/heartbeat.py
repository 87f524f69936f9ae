"""The idle cost of the Engine.IO heartbeat: N idle connections held on our server, once per
heartbeat setting, with the server's CPU and memory over the hold.

    python bench/heartbeat.py                                   # 10,000 connections, 60 s, four settings
    python bench/heartbeat.py --connections 2000 --hold 20 --heartbeat 25/20 --heartbeat 10/5
    scripts/hatch run bench:python bench/heartbeat.py ...

Each setting ``I/T`` starts ``smcp-server --ping-interval I --ping-timeout T`` and runs the ``idle``
scenario of ``load.py`` against it (N/2 Computer+Agent pairs, each in an office, every ping
answered). Printed per setting: the bound on noticing a dead peer (I + T), the server's CPU
utilisation while idle, pings per second, and RSS per connection. docs/reliability.md reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import log, raise_nofile
from run import run_child

from smcp.testing.processes import ProcessManager

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token"
DEFAULT_SETTINGS = ("25/20", "10/10", "10/5", "5/5")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--hold", type=float, default=60.0, help="seconds the connections are held idle")
    ap.add_argument("--heartbeat", action="append", help="INTERVAL/TIMEOUT in seconds; repeatable")
    ap.add_argument("--connect-concurrency", type=int, default=200)
    return ap.parse_args()


def one(procs: ProcessManager, setting: str, args: argparse.Namespace) -> dict[str, object]:
    interval, timeout = (float(x) for x in setting.split("/"))
    argv = [
        sys.executable, "-m", "smcp.server.asgi.cli", "--host", "127.0.0.1", "--port", "0",
        "--token", TOKEN, "--log-level", "warning",
        "--ping-interval", str(interval), "--ping-timeout", str(timeout),
    ]  # fmt: skip
    proc = procs.start(f"server-{setting.replace('/', '-')}", argv, timeout=60)
    try:
        load = [
            sys.executable, str(HERE / "load.py"), "--url", f"http://127.0.0.1:{proc.port}",
            "--token", TOKEN, "--server-pid", str(proc.pid), "--scenario", "idle",
            "--clients", str(args.connections // 2), "--hold", str(args.hold), "--seconds", "300",
            "--connect-concurrency", str(args.connect_concurrency),
        ]  # fmt: skip
        res = run_child(load, 420 + args.hold)
    finally:
        proc.stop(4.0)
    pings = res.get("pings_during_hold")
    return {
        "heartbeat": setting,
        "detects_dead_peer_within_s": interval + timeout,
        "connections": res.get("connections"),
        "held_ok": res.get("held_ok"),
        "server_cpu_util_idle": res.get("server_cpu_util_idle"),
        "pings_per_s": round(pings / args.hold, 1) if isinstance(pings, int) else None,
        "server_rss_mb": res.get("server_rss_mb"),
        "server_rss_kb_per_connection": res.get("server_rss_kb_per_connection"),
        "error": None if res.get("ok", True) else res.get("error"),
    }


def main() -> None:
    args = parse_args()
    raise_nofile()
    settings = args.heartbeat or list(DEFAULT_SETTINGS)
    logs = Path(tempfile.gettempdir()) / "smcp-bench" / f"heartbeat-{time.strftime('%Y%m%d-%H%M%S')}"
    procs = ProcessManager(logs)
    rows = []
    try:
        for setting in settings:
            log(f"heartbeat {setting}: {args.connections} connections, hold {args.hold:.0f} s")
            rows.append(one(procs, setting, args))
            log(json.dumps(rows[-1]))
    finally:
        procs.stop_all(4.0)
    header = "| heartbeat (s) | dead peer noticed within (s) | held | server CPU idle | pings/s | RSS MB |"
    print(header + " KB/conn |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['heartbeat']} | {r['detects_dead_peer_within_s']:.0f} | {r['held_ok']} | "
            f"{r['server_cpu_util_idle']} | {r['pings_per_s']} | {r['server_rss_mb']} | "
            f"{r['server_rss_kb_per_connection']} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
