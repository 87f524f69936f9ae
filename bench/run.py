"""SMCP benchmark suite: one command, every server on this machine, side by side.

    python bench/run.py [--quick] [--scenario latency,throughput,...] [--server ours ...] [--repeat N]
    scripts/hatch run bench:all -- --quick

Servers run as separate processes on loopback (see servers.py); each measured run is a fresh
load-generator process (load.py, fullstack.py). Servers alternate within each repeat (the
order rotates every repeat) so that they share the machine's noise; ratios are taken within a
repeat. Results: ``bench/results/<timestamp>.json`` (every record) and ``.md`` (the tables).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import Result, log
from report import Record, summary_table, target_status, target_table, targets
from servers import ROOT, SERVER_NAMES, Servers, granian_missing, node_relay_missing, ours_available

from smcp.testing.mcp_servers import script_path

HERE = Path(__file__).resolve().parent
SCENARIOS = (
    "latency",
    "throughput",
    "broadcast",
    "delivery",
    "connscale",
    "officefill",
    "idle",
    "fullstack",
    "imports",
)
STD_SCENARIOS = {"latency", "throughput", "delivery"}  # the -std variants: per-call CPU targets, delivery
VARIANTS = ("-std", "-granian", "-plain")  # other hostings of ours / the relay: STD_SCENARIOS only
DEFAULT_SERVERS = ["ours", "official", "relay", "node-relay", "ours-std", "relay-std", "ours-granian"]
TOOLBOX = script_path("toolbox")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke run (~2 min)")
    ap.add_argument(
        "--scenario", action="append", help=f"comma list of {', '.join(SCENARIOS)} (default: all)"
    )
    ap.add_argument(
        "--server",
        action="append",
        choices=SERVER_NAMES,
        help="servers to compare (default: all but none missing: " + ", ".join(DEFAULT_SERVERS) + ")",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--heavy-repeat", type=int, default=1, help="repeats of the heavy runs (largest connscale size, idle)"
    )
    ap.add_argument("--token", default="bench-secret")
    ap.add_argument("--concurrency", default="16,64", help="throughput: calls in flight")
    ap.add_argument("--throughput-seconds", type=float, default=5.0)
    ap.add_argument("--latency-calls", type=int, default=2000)
    ap.add_argument("--receivers", default="16,128")
    ap.add_argument("--conn-sizes", default="1000,5000", help="connscale: computer+agent pairs")
    ap.add_argument("--idle-connections", type=int, default=10000)
    ap.add_argument("--idle-hold", type=float, default=60.0)
    ap.add_argument("--office-members", type=int, default=500)
    ap.add_argument("--connect-concurrency", type=int, default=200)
    ap.add_argument("--fs-concurrency", type=int, default=16)
    ap.add_argument("--fs-n1", type=int, default=300)
    ap.add_argument("--fs-nc", type=int, default=800)
    ap.add_argument(
        "--fs-pairs",
        type=int,
        default=1000,
        help="fullstack: calls of our Agent alternated with MCP-direct ones in the same window (0: none)",
    )
    ap.add_argument(
        "--computer-loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="fullstack: the event loop of our Computer (smcp-computer run --loop)",
    )
    ap.add_argument(
        "--driver-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="fullstack: the event loop of our Agent's and MCP-direct's driver processes",
    )
    ap.add_argument("--import-runs", type=int, default=7)
    ap.add_argument("--out", type=Path, default=HERE / "results", help="folder for <timestamp>.json/.md")
    args = ap.parse_args()
    scen = [s.strip() for group in (args.scenario or ["all"]) for s in group.split(",") if s.strip()]
    args.scenarios = list(SCENARIOS) if "all" in scen else scen
    bad = sorted(set(args.scenarios) - set(SCENARIOS))
    if bad:
        ap.error(f"unknown scenario(s) {bad}")
    args.servers = args.server or list(DEFAULT_SERVERS)
    if args.quick:
        args.repeat, args.heavy_repeat, args.latency_calls, args.throughput_seconds = 1, 1, 300, 1.0
        args.receivers, args.conn_sizes, args.idle_connections, args.idle_hold = "8", "50", 200, 5.0
        args.office_members, args.fs_n1, args.fs_nc, args.import_runs = 40, 50, 100, 2
        args.fs_pairs = min(args.fs_pairs, 50)
    args.concurrency = [int(x) for x in str(args.concurrency).split(",") if x]
    args.receivers = [int(x) for x in str(args.receivers).split(",") if x]
    args.conn_sizes = [int(x) for x in str(args.conn_sizes).split(",") if x]
    return args


def run_child(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> Result:
    """Run one measuring process (own session) and return the JSON object on its last stdout line."""
    p = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        cwd=str(HERE),
        env=env,
    )
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
        return {"ok": False, "error": f"killed after {timeout:.0f} s", "stderr_tail": (err or "")[-400:]}
    finally:
        if p.poll() is None:  # interrupted: do not leave the measuring process behind
            os.killpg(p.pid, signal.SIGKILL)
    for line in reversed((out or "").splitlines()):
        if line.startswith("{"):
            try:
                res: Result = json.loads(line)
                return res
            except json.JSONDecodeError:
                break
    return {"ok": False, "error": f"no JSON result (exit {p.returncode})", "stderr_tail": (err or "")[-400:]}


class Plan:
    def __init__(self, args: argparse.Namespace, servers: Servers) -> None:
        self.args = args
        self.servers = servers
        self.records: list[Record] = []

    def record(self, server: str, key: str, rep: int, res: Result) -> None:
        rec: Record = {"server": server, "key": key, "repeat": rep, **res}
        self.records.append(rec)
        status = "ok" if res.get("ok") else f"FAILED: {res.get('error')}"
        log(f"rep {rep} {server} {key}: {status}")

    def load_argv(self, url: str, pid: int, scenario: str, *extra: str) -> list[str]:
        return [
            sys.executable,
            str(HERE / ("delivery.py" if scenario == "delivery" else "load.py")),
            "--url",
            url,
            "--token",
            self.args.token,
            "--server-pid",
            str(pid),
            "--scenario",
            scenario,
            *extra,
        ]

    def shared_runs(self) -> list[tuple[str, list[str], float]]:
        a = self.args
        runs: list[tuple[str, list[str], float]] = []
        if "latency" in a.scenarios:
            runs.append(("latency_c1", ["latency", "--n", str(a.latency_calls), "--seconds", "30"], 90))
        if "throughput" in a.scenarios:
            for c in a.concurrency:
                runs.append(
                    (
                        f"throughput_c{c}",
                        ["throughput", "--concurrency", str(c), "--seconds", str(a.throughput_seconds)],
                        90,
                    )
                )
        if "delivery" in a.scenarios:
            runs.append(("delivery", ["delivery", "--rounds", "20"], 120))
        if "broadcast" in a.scenarios:
            for k in a.receivers:
                runs.append((f"broadcast_k{k}", ["broadcast", "--receivers", str(k), "--seconds", "30"], 120))
        return runs

    def fresh_runs(self, rep: int) -> list[tuple[str, list[str], float]]:
        a = self.args
        runs: list[tuple[str, list[str], float]] = []
        cc = ["--connect-concurrency", str(a.connect_concurrency)]
        if "connscale" in a.scenarios:
            biggest = max(a.conn_sizes)
            for size in a.conn_sizes:
                if size == biggest and len(a.conn_sizes) > 1 and rep > a.heavy_repeat:
                    continue
                runs.append(
                    (f"connscale_{size}", ["connscale", "--clients", str(size), "--seconds", "180", *cc], 300)
                )
        if "officefill" in a.scenarios:
            m = a.office_members
            runs.append(
                (f"officefill_{m}", ["officefill", "--members", str(m), "--seconds", "120", *cc], 240)
            )
        if "idle" in a.scenarios and rep <= a.heavy_repeat:
            pairs = a.idle_connections // 2
            runs.append(
                (
                    f"idle_{a.idle_connections}",
                    ["idle", "--clients", str(pairs), "--seconds", "240", "--hold", str(a.idle_hold), *cc],
                    420 + a.idle_hold,
                )
            )
        return runs

    def wire(self, name: str, rep: int) -> None:
        std = name.endswith(VARIANTS)
        shared = [r for r in self.shared_runs() if not std or r[0].split("_")[0] in STD_SCENARIOS]
        fresh = [] if std else self.fresh_runs(rep)
        if shared:
            self.on_server(name, rep, shared)
        for run in fresh:
            self.on_server(name, rep, [run])

    def on_server(self, name: str, rep: int, runs: list[tuple[str, list[str], float]]) -> None:
        try:
            proc, url = self.servers.start(name)
        except Exception as exc:
            for key, _, _ in runs:
                self.record(name, key, rep, {"ok": False, "error": f"server did not start: {exc}"[:400]})
            return
        try:
            for key, la, tmo in runs:
                log(f"rep {rep} {name}: {key}")
                self.record(name, key, rep, run_child(self.load_argv(url, proc.pid, *la), tmo))
        finally:
            self.servers.stop(proc)

    # -- full stack ---------------------------------------------------------------------------

    def fullstack(self, rep: int) -> None:
        a = self.args
        common = [
            "--concurrency",
            str(a.fs_concurrency),
            "--n1",
            str(a.fs_n1),
            "--nc",
            str(a.fs_nc),
            "--token",
            a.token,
        ]
        impls: list[tuple[str, Callable[[], Result]]] = [
            (
                "mcp-direct",
                lambda: run_child(
                    [
                        sys.executable,
                        str(HERE / "fullstack.py"),
                        "--impl",
                        "mcp-direct",
                        "--mcp-script",
                        str(TOOLBOX),
                        "--loop",
                        a.driver_loop,
                        *common,
                    ],
                    180,
                ),
            ),
        ]
        if "official" in a.servers:
            impls.append(("official", lambda: self.trio("official", rep, common)))
        if "ours" in a.servers:
            impls.append(("ours", lambda: self.trio("ours", rep, common)))
        if "ours-std" in a.servers:  # the same trio with the server on smcp-server-asgi[standard]
            impls.append(("ours-std", lambda: self.trio("ours-std", rep, common)))
        if "node-relay" in a.servers:  # our Agent and Computer through the reference Socket.IO relay
            impls.append(("node-relay", lambda: self.trio("node-relay", rep, common)))
        k = (rep - 1) % len(impls)
        for name, fn in impls[k:] + impls[:k]:
            log(f"rep {rep} fullstack: {name}")
            try:
                res = fn()
            except Exception as exc:
                res = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
            self.record(name, "fullstack", rep, res)

    def trio(self, impl: str, rep: int, common: list[str]) -> Result:
        from smcp.testing.mcp_config import stdio_server_entry, write_mcp_json
        from smcp.testing.official import start_official_computer
        from smcp.testing.official_env import official_python

        office, computer = f"fs-office-{impl}-{rep}", f"fs-computer-{impl}-{rep}"
        work = Path(tempfile.mkdtemp(prefix=f"smcp-bench-fs-{impl}-"))
        mcp_entry = stdio_server_entry(sys.executable, [str(TOOLBOX), "stdio"])
        driver = "official" if impl == "official" else "ours"  # our Agent drives the other servers
        if driver == "ours" and not ours_computer_available():
            return {
                "ok": False,
                "pending": True,
                "error": "pending: our Computer (smcp-computer run) is not there yet",
            }
        proc, url = self.servers.start(impl)
        try:
            if impl == "official":
                config = write_mcp_json(work / "mcp.json", {"echo": mcp_entry})
                asyncio.run(
                    start_official_computer(
                        self.servers.procs,
                        url=url,
                        office=office,
                        name=computer,
                        config=config,
                        token=self.args.token,
                    )
                )
                python = str(official_python())
            else:
                start_our_computer(
                    self.servers,
                    url,
                    office,
                    computer,
                    work=work,
                    mcp_entry=mcp_entry,
                    token=self.args.token,
                    loop=self.args.computer_loop,
                )
                python = sys.executable
            argv = [
                python,
                str(HERE / "fullstack.py"),
                "--impl",
                driver,
                "--url",
                url,
                "--office",
                office,
                "--computer",
                computer,
                "--server-pid",
                str(proc.pid),
                *common,
            ]
            if driver == "ours":
                argv += ["--loop", self.args.driver_loop]
            if driver == "ours" and self.args.fs_pairs:
                argv += ["--pair-calls", str(self.args.fs_pairs), "--mcp-script", str(TOOLBOX)]
            env = dict(os.environ, HOME=str(work))
            return run_child(argv, 240, env=env)
        finally:
            for p in reversed(self.servers.procs.processes):
                if p.alive:
                    p.stop(4.0)

    # -- import time ----------------------------------------------------------------------------

    def imports(self, rep: int) -> None:
        import imports

        from smcp.testing.official_env import official_python

        official = official_python() if "official" in self.args.servers else None
        for module, res in imports.measure_all(sys.executable, official, self.args.import_runs).items():
            who = "official" if module.startswith("a2c_smcp") else "ours"
            self.record(who, f"import_{module}", rep, res)

    def run(self) -> None:
        a = self.args
        wire_scen = {"latency", "throughput", "broadcast", "delivery", "connscale", "officefill", "idle"}
        for rep in range(1, a.repeat + 1):
            if "imports" in a.scenarios and rep == 1:
                self.imports(rep)
            if wire_scen & set(a.scenarios):
                k = (rep - 1) % len(a.servers)
                for name in a.servers[k:] + a.servers[:k]:
                    self.wire(name, rep)
            if "fullstack" in a.scenarios:
                self.fullstack(rep)


def ours_computer_available() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "smcp.computer.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0 and "run" in done.stdout


def start_our_computer(
    servers: Servers,
    url: str,
    office: str,
    name: str,
    *,
    work: Path,
    mcp_entry: dict[str, object],
    token: str,
    loop: str = "auto",
) -> None:
    config = work / "mcp.json"
    config.write_text(json.dumps({"servers": {"echo": mcp_entry}, "inputs": []}), encoding="utf-8")
    argv = [
        sys.executable,
        "-m",
        "smcp.computer.cli",
        "run",
        "--url",
        url,
        "--token",
        token,
        "--office",
        office,
        "--name",
        name,
        "--config",
        str(config),
        "--no-repl",
        "--auto-apply",
        "--loop",
        loop,
    ]
    servers.procs.start(
        f"ours-computer-{office}",
        argv,
        ready=r"READY",
        timeout=60,
        env=dict(os.environ, HOME=str(work)),
        cwd=work,
    )


def machine() -> Result:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "loadavg": os.getloadavg(),
    }


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for p in (
        "python-socketio",
        "python-engineio",
        "uvicorn",
        "uvloop",
        "httptools",
        "websockets",
        "wsproto",
        "aiohttp",
        "mcp",
        "smcp-server-asgi",
        "granian",
    ):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    out.update(node_versions())
    return out


def node_versions() -> dict[str, str | None]:
    """Node.js and its socket.io package (the node-relay), when present."""
    out: dict[str, str | None] = {"node": None, "socket.io (node)": None}
    node = shutil.which("node")
    if node is not None:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10, check=False)
        out["node"] = done.stdout.strip() or None
    pkg = ROOT / "bench" / "node_relay" / "node_modules" / "socket.io" / "package.json"
    if pkg.is_file():
        out["socket.io (node)"] = str(json.loads(pkg.read_text(encoding="utf-8")).get("version"))
    return out


def main() -> None:
    args = parse_args()
    if any(s.startswith("ours") for s in args.servers) and not ours_available():
        log("our server (python -m smcp.server.asgi.cli) is not installed yet: leaving 'ours' out")
        args.servers = [s for s in args.servers if not s.startswith("ours")]
    for name, missing in (("node-relay", node_relay_missing), ("ours-granian", granian_missing)):
        reason = missing() if name in args.servers else None
        if reason is not None:
            log(f"skipping {name}: {reason}")
            args.servers = [s for s in args.servers if s != name]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = Path(tempfile.gettempdir()) / "smcp-bench" / stamp
    servers = Servers(log_dir, args.token)
    meta: Result = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": " ".join(shlex.quote(x) for x in sys.argv),
        "machine": machine(),
        "versions": versions(),
        "servers": args.servers,
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False
        ).stdout.strip(),
        "logs": str(log_dir),
    }
    log(f"servers={args.servers} scenarios={args.scenarios} repeat={args.repeat} logs={log_dir}")
    plan = Plan(args, servers)
    t0 = time.monotonic()
    try:
        plan.run()
    except KeyboardInterrupt:
        log("interrupted: writing what was measured")
    finally:
        servers.stop_all()
    meta["elapsed_s"] = round(time.monotonic() - t0, 1)
    meta["loadavg_end"] = os.getloadavg()
    thru = [f"throughput_c{c}" for c in args.concurrency]
    conn = [f"connscale_{c}" for c in args.conn_sizes]
    tlist = targets(thru, conn, f"officefill_{args.office_members}", args.fs_concurrency)
    m = meta["machine"]
    assert isinstance(m, dict)
    md = (
        f"Run {meta['started']} on {m['nproc']} × {m['cpu']}, Python {m['python']}; "
        f"{args.repeat} repeat(s), {meta['elapsed_s']} s, commit {meta['commit']}; `{meta['argv']}`\n\n"
        f"### Targets\n\n{target_table(plan.records, tlist)}\n"
        f"### All figures (median, min–max over repeats)\n\n{summary_table(plan.records)}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "records": plan.records, "targets": target_status(plan.records, tlist)}
    (args.out / f"{stamp}.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (args.out / f"{stamp}.md").write_text(md, encoding="utf-8")
    print(md)
    log(f"wrote {args.out / stamp}.json and .md in {meta['elapsed_s']} s")


if __name__ == "__main__":
    main()
