"""Where one full-stack tool call spends its time, stage by stage (concurrency 1).

    python bench/stages.py [--calls 300] [--server ours|ours-std] [--computer-loop auto|asyncio|uvloop]
                           [--cpu] [--null-mcp]
                           [--profile-computer PATH] [--profile-role computer|agent|server]

Starts our server, our Computer (on ``smcp.testing.mcp_servers``' ``toolbox.py stdio``) and an Agent in
three processes, each with timing hooks (``time.perf_counter_ns``: CLOCK_MONOTONIC, comparable
across processes on Linux), makes ``--calls`` sequential ``echo`` calls and prints, per stage,
the time since the previous stage (p50, p90, mean), then the same for MCP called directly over
stdio. ``--cpu`` adds calls/s and CPU µs per call of every process at 16 in flight (``--conc``;
``/proc``), on a second server and Computer started without the timing hooks, and of the bare MCP
client twice: at 16 in flight, and paced to the full stack's calls/s (the load the Computer saw);
``--null-mcp`` makes the Computer answer every call with a canned result instead of calling MCP,
so its CPU per call is what the Computer itself costs;
``--profile-computer PATH`` also samples the Computer with py-spy in that window (its figures
then include py-spy's own load on the machine: profile and measure in separate runs);
``--profile-role`` samples the Agent (the driver's own process) or the server instead.
A diagnostic, not part of ``run.py``: the hooks wrap private python-socketio/mcp methods, and
each mark is a line-buffered write (a few µs, included in the stage it ends).
To compare with an older checkout, put its ``packages/*/src`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from smcp.testing.mcp_servers import script_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOOLBOX = script_path("toolbox")
TOKEN = "stage-secret"
_LOG: Any = None
NULL_MCP = "SMCP_STAGES_NULL_MCP"


def mark(stage: str) -> None:
    _LOG.write(f"{time.perf_counter_ns()} {stage}\n")


# -- hooks -----------------------------------------------------------------------------------


def hook_sio_client(prefix: str) -> Any:
    import socketio

    cls = socketio.AsyncClient
    recv, send = cls._handle_eio_message, cls._send_packet

    async def handle_eio_message(self: Any, data: Any) -> None:
        if isinstance(data, str) and data[:1] in "23":
            mark(f"{prefix}.recv{data[:1]}")
        await recv(self, data)

    async def send_packet(self: Any, pkt: Any) -> None:
        if pkt.packet_type in (2, 3):
            mark(f"{prefix}.send{pkt.packet_type}")
        await send(self, pkt)

    cls._handle_eio_message = handle_eio_message  # type: ignore[method-assign]
    cls._send_packet = send_packet  # type: ignore[method-assign]

    def undo() -> None:
        cls._handle_eio_message, cls._send_packet = recv, send  # type: ignore[method-assign]

    return undo


def hook_sio_server() -> None:
    import socketio

    cls = socketio.AsyncServer
    recv, send = cls._handle_eio_message, cls._send_packet

    async def handle_eio_message(self: Any, eio_sid: str, data: Any) -> None:
        if isinstance(data, str) and data[:1] in "23":
            mark(f"S.recv{data[:1]}")
        await recv(self, eio_sid, data)

    async def send_packet(self: Any, eio_sid: str, pkt: Any) -> None:
        if pkt.packet_type in (2, 3):
            mark(f"S.send{pkt.packet_type}")
        await send(self, eio_sid, pkt)

    cls._handle_eio_message = handle_eio_message  # type: ignore[method-assign]
    cls._send_packet = send_packet  # type: ignore[method-assign]

    def undo() -> None:
        cls._handle_eio_message, cls._send_packet = recv, send  # type: ignore[method-assign]

    return undo


class _StreamProxy:
    """Forwards everything to the wrapped MCP stream; subclasses mark the messages they see."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._inner.aclose()


def _jsonrpc(item: Any) -> Any:
    """The JSON-RPC message of a session message (or the message itself)."""
    msg = getattr(item, "message", item)
    return getattr(msg, "root", msg)


def mark_write(item: Any) -> None:
    if getattr(_jsonrpc(item), "method", None) == "tools/call":
        mark("C.mcp_write")


def mark_read(item: Any) -> None:
    result = getattr(_jsonrpc(item), "result", None)
    if isinstance(result, dict) and "content" in result:
        mark("C.mcp_read")


class _WriteProxy(_StreamProxy):
    async def send(self, item: Any) -> None:
        mark_write(item)
        await self._inner.send(item)


class _ReadProxy(_StreamProxy):
    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> Any:
        item = await self._inner.__anext__()
        mark_read(item)
        return item

    async def receive(self) -> Any:
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            import anyio

            raise anyio.EndOfStream from None


def hook_computer() -> None:
    import contextlib

    from smcp.computer import _computer, _hosting, _link

    host_cls = _hosting.MCPServerHost
    transport = host_cls._transport

    def wrapped_transport(self: Any, config: Any) -> Any:
        inner = transport(self, config)

        @contextlib.asynccontextmanager
        async def cm() -> Any:
            async with inner as streams:
                yield _ReadProxy(streams[0]), _WriteProxy(streams[1])

        return cm()

    host_cls._transport = wrapped_transport  # type: ignore[method-assign]

    try:
        from smcp.computer import _stdio
    except ImportError:  # an older checkout on PYTHONPATH: mcp's streams, marked by the proxies
        _stdio = None
    if _stdio is not None:
        direct_send = _stdio.DirectStdin.send

        async def marked_send(self: Any, item: Any) -> None:  # the host writes stdin itself
            await direct_send(self, item)
            mark_write(item)

        _stdio.DirectStdin.send = marked_send  # type: ignore[method-assign]
        direct_next = getattr(_stdio, "DirectStdout", None)
        if direct_next is not None:  # the host reads stdout itself: mark what it reads
            read_next = direct_next.__anext__

            async def marked_next(self: Any) -> Any:
                item = await read_next(self)
                mark_read(item)
                return item

            direct_next.__anext__ = marked_next

    def around(cls: Any, name: str, tag: str) -> None:
        fn = getattr(cls, name)

        async def wrapper(*a: Any, **k: Any) -> Any:
            mark(f"C.{tag}_in")
            try:
                return await fn(*a, **k)
            finally:
                mark(f"C.{tag}_out")

        setattr(cls, name, wrapper)

    around(_link.ComputerLink, "answer", "answer")
    around(_computer.Computer, "call_tool", "call_tool")
    around(_computer.Computer, "_execute", "execute")
    around(host_cls, "call_tool", "host_call")
    hook_sio_client("C")


def null_mcp() -> None:
    """--null-mcp: every tool call is answered with a canned result, without calling MCP."""
    import mcp_types

    from smcp.computer import _hosting

    canned = mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text="x" * 64)])

    async def null_call(self: Any, name: str, arguments: Any, timeout: Any = None) -> Any:
        return canned

    _hosting.MCPServerHost.call_tool = null_call  # type: ignore[method-assign]


# -- roles -----------------------------------------------------------------------------------


def role_main(role: str, log_path: str, argv: list[str]) -> None:
    """A server or Computer process; with no ``log_path``, one without timing hooks."""
    global _LOG
    hooked = bool(log_path)
    if hooked:
        _LOG = open(log_path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115
    if role == "server":
        if hooked:
            hook_sio_server()
        sys.argv = ["ours_server.py", *argv]
        import ours_server  # a sibling: this script's folder is sys.path[0]

        ours_server.main()
    elif role == "computer":
        if hooked:
            hook_computer()
        if os.environ.get(NULL_MCP):
            null_mcp()
        from smcp.computer.cli import main

        sys.argv = ["smcp-computer", *argv]
        main()


def start(
    argv: list[str], ready: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(ready, line)
        if m:
            return proc, line
    proc.kill()
    raise RuntimeError(f"{argv[:4]} did not print {ready}")


def stage_table(lines: list[tuple[int, str]], starts: list[int]) -> dict[str, list[float]]:
    """Per call (window between consecutive agent starts): delta from the previous stage."""
    lines.sort()
    out: dict[str, list[float]] = {}
    bounds = starts  # call i spans bounds[i]..bounds[i + 1]
    j = 0
    for i in range(len(starts) - 1):
        lo, hi = bounds[i], bounds[i + 1]
        while j < len(lines) and lines[j][0] < lo:
            j += 1
        prev = lo
        k = j
        while k < len(lines) and lines[k][0] < hi:
            t, name = lines[k]
            out.setdefault(name, []).append((t - prev) / 1e6)
            prev = t
            k += 1
    return out


async def agent_run(url: str, office: str, computer: str, calls: int) -> tuple[list[int], list[float]]:
    from smcp.agent import AsyncAgent

    starts: list[int] = []
    lat: list[float] = []
    async with AsyncAgent(url, token=TOKEN, office=office, name=office, cache=False) as agent:
        tools = await agent.get_tools(computer)
        tool = next(str(t.name) for t in tools if str(t.name).endswith("__echo"))
        for _ in range(30):
            await agent.call_tool(computer, tool, {"text": "x" * 64}, timeout=30)
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            mark("A.start")
            starts.append(t0)
            await agent.call_tool(computer, tool, {"text": "x" * 64}, timeout=30)
            mark("A.end")
            lat.append((time.perf_counter_ns() - t0) / 1e6)
        starts.append(time.perf_counter_ns())  # end of the last window
    return starts, lat


async def agent_cpu(url: str, office: str, computer: str, conc: int, beside: int | None) -> float:
    """The c16 window of the full stack (processes without timing hooks); returns its calls/s.

    ``beside``: the stdin of a ``--role bare`` process, sent one byte per full-stack call made in
    the measured window, so that a bare MCP client makes the same calls at the same moments.
    """
    from smcp.agent import AsyncAgent

    async with AsyncAgent(url, token=TOKEN, office=office, name=office, cache=False) as agent:
        tools = await agent.get_tools(computer)
        tool = next(str(t.name) for t in tools if str(t.name).endswith("__echo"))

        async def call() -> None:
            await agent.call_tool(computer, tool, {"text": "x" * 64}, timeout=30)
            if beside is not None and MEASURING:
                os.write(beside, b"x")

        return await cpu_window(call, conc)


MEASURING = False  # inside cpu_window's measured window


def bare_main(conc: int) -> None:
    """--role bare: a bare MCP client making one call per byte on stdin, at most ``conc`` at once."""

    async def run() -> None:
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        loop = asyncio.get_running_loop()
        tokens = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(tokens), sys.stdin)
        params = StdioServerParameters(command=sys.executable, args=[str(TOOLBOX), "stdio"])
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("echo", {"text": "x" * 64})
            print("READY", flush=True)
            gate = asyncio.Semaphore(conc)
            calls: set[asyncio.Task[Any]] = set()

            async def one() -> None:
                async with gate:
                    await session.call_tool("echo", {"text": "x" * 64})

            while chunk := await tokens.read(4096):
                for _ in chunk:
                    task = loop.create_task(one())
                    calls.add(task)
                    task.add_done_callback(calls.discard)
            await asyncio.gather(*calls)

    asyncio.run(run())


CPU_PIDS: dict[str, int] = {}
CPU_REPORT: list[str] = []
PROFILE_PATH = ""  # --profile-computer: py-spy raw output path for the c16 window
PROFILE_ROLE = "computer"  # --profile-role: the process it samples


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


async def cpu_window(
    call: Any,
    conc: int = 16,
    seconds: float = 5.0,
    *,
    pids: dict[str, int] | None = None,
    rate: float = 0.0,
    label: str = "",
) -> float:
    """Calls/s at ``conc`` in flight and CPU µs per call of each process (returns calls/s).

    With ``rate``, each worker starts a call at most every ``conc / rate`` seconds: the same
    calls/s as the run that measured ``rate``, so that a bare MCP client can be compared at the
    load the Computer saw (a process's CPU per call depends on how many calls each loop pass
    serves).
    """
    cycle = conc / rate if rate else 0.0
    if pids is None:
        pids = dict(CPU_PIDS, agent=os.getpid())
        kids = children(pids["computer"])
        if kids:
            pids["mcp-child"] = kids[0]
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while (began := time.perf_counter()) < stop:
            await call()
            done += 1
            if cycle:
                await asyncio.sleep(max(0.0, began + cycle - time.perf_counter()))

    await asyncio.gather(*(worker() for _ in range(conc)))  # warm-up
    stop = time.perf_counter() + seconds
    done = 0
    spy = None
    if PROFILE_PATH and PROFILE_ROLE in pids:
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(pids[PROFILE_ROLE]), "-d", str(int(seconds)), "-r", "200",
             "-f", "raw", "-o", PROFILE_PATH, "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    global MEASURING
    before = {k: cpu_ticks(v) for k, v in pids.items()}
    t0 = time.perf_counter()
    MEASURING = True
    try:
        await asyncio.gather(*(worker() for _ in range(conc)))
    finally:
        MEASURING = False
    wall = time.perf_counter() - t0
    if spy is not None:
        await asyncio.to_thread(spy.wait)
    hz = os.sysconf("SC_CLK_TCK")
    per = {k: (cpu_ticks(v) - before[k]) / hz / done * 1e6 for k, v in pids.items()}
    CPU_REPORT.append(
        f"{label or f'c{conc}'}: {done / wall:.0f} calls/s; CPU µs per call: "
        + ", ".join(f"{k} {v:.0f}" for k, v in per.items())
        + f", total {sum(per.values()):.0f}"
    )
    return done / wall


async def direct_cpu(rate: float, conc: int) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable, args=[str(TOOLBOX), "stdio"])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        kids = [k for k in children(os.getpid()) if "toolbox" in Path(f"/proc/{k}/cmdline").read_text()]
        CPU_REPORT.append("mcp-direct:")
        pids = {"client": os.getpid(), "mcp-child": kids[0]}
        call = lambda: session.call_tool("echo", {"text": "x" * 64})  # noqa: E731
        await cpu_window(call, conc, pids=pids)
        if rate:
            label = f"c{conc} paced to the full stack's calls/s"
            await cpu_window(call, conc, pids=pids, rate=rate, label=label)


direct_marks: list[tuple[int, str]] = []
direct_starts: list[int] = []


class _Marks:
    def write(self, line: str) -> None:
        t, name = line.split()
        direct_marks.append((int(t), name.replace("C.", "D.")))


async def direct_run(calls: int) -> list[float]:
    global _LOG
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    _LOG = _Marks()
    params = StdioServerParameters(command=sys.executable, args=[str(TOOLBOX), "stdio"])
    lat: list[float] = []
    async with (
        stdio_client(params) as (read, write),
        ClientSession(_ReadProxy(read), _WriteProxy(write)) as session,
    ):
        await session.initialize()
        for i in range(calls + 30):
            t0 = time.perf_counter_ns()
            if i >= 30:
                direct_starts.append(t0)
            await session.call_tool("echo", {"text": "x" * 64})
            if i >= 30:
                lat.append((time.perf_counter_ns() - t0) / 1e6)
                mark("D.end")
    return lat


def start_trio(
    work: Path, args: argparse.Namespace, logs: dict[str, Path] | None
) -> tuple[list[subprocess.Popen[str]], str]:
    """Our server and Computer (with timing hooks when ``logs`` is given); returns them and the URL."""
    me = [sys.executable, str(Path(__file__).resolve())]
    server_argv = ["--port", "0", "--token", TOKEN]
    if args.server == "ours-std":
        server_argv += ["--stack", "standard"]
    log = {r: str(logs[r]) if logs else "" for r in ("server", "computer")}
    srv, line = start(
        [*me, "--role", "server", "--log", log["server"], "--", *server_argv], r"LISTENING (\d+)"
    )
    procs = [srv]
    url = f"http://127.0.0.1:{line.split()[1]}"
    config = work / "mcp.json"
    config.write_text(json.dumps({"servers": {"echo": _entry()}, "inputs": []}), encoding="utf-8")
    comp_argv = ["run", "--url", url, "--token", TOKEN, "--office", "o1", "--name", "c1",
                 "--config", str(config), "--no-repl", "--auto-apply",
                 "--loop", args.computer_loop]  # fmt: skip
    env = dict(os.environ, HOME=str(work), A2C_SMCP_LOG_LEVEL="warning")
    if args.null_mcp:
        env[NULL_MCP] = "1"
    try:
        comp, _ = start([*me, "--role", "computer", "--log", log["computer"], "--", *comp_argv], "READY", env)
    except Exception:
        stop(procs)
        raise
    procs.append(comp)
    return procs, url


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()


def driver(args: argparse.Namespace) -> None:
    global _LOG
    work = Path(tempfile.mkdtemp(prefix="smcp-stages-"))
    logs = {r: work / f"{r}.log" for r in ("server", "computer", "agent")}
    procs, url = start_trio(work, args, logs)
    try:
        _LOG = open(logs["agent"], "w", buffering=1, encoding="utf-8")  # noqa: SIM115
        unhook = hook_sio_client("A")
        starts, lat = asyncio.run(agent_run(url, "o1", "c1", args.calls))
        _LOG.close()
        unhook()
    finally:
        stop(procs)
    direct = asyncio.run(direct_run(args.calls))
    if args.cpu:  # on processes without the timing hooks, whose wrappers would count as CPU
        procs, url = start_trio(work, args, None)
        me = [sys.executable, str(Path(__file__).resolve()), "--conc", str(args.conc)]
        bare = subprocess.Popen(
            [*me, "--role", "bare"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        procs.append(bare)
        try:
            assert bare.stdin is not None and bare.stdout is not None
            if bare.stdout.readline().strip() != "READY":
                raise RuntimeError("the bare MCP client did not start")
            CPU_PIDS.update(server=procs[0].pid, computer=procs[1].pid)
            CPU_PIDS.update({"bare client beside": bare.pid, "its mcp-child": children(bare.pid)[0]})
            rate = asyncio.run(agent_cpu(url, "o1", "c1", args.conc, bare.stdin.fileno()))
            bare.stdin.close()
            bare.wait(30)
        finally:
            stop(procs)
        asyncio.run(direct_cpu(rate, args.conc))
    lines: list[tuple[int, str]] = []
    for path in logs.values():
        for raw in path.read_text(encoding="utf-8").splitlines():
            t, name = raw.split(" ", 1)
            lines.append((int(t), name))
    table = stage_table(lines, starts)
    print(
        f"full stack p50 {statistics.median(lat):.2f} ms  (mcp-direct p50 {statistics.median(direct):.2f} ms)"
    )
    print(f"{'stage (delta from previous)':34} {'p50 ms':>8} {'p90':>8} {'mean':>8} {'n':>5}")
    for name in [*ORDER, *sorted(set(table) - set(ORDER))]:
        vals = table.get(name)
        if vals:
            p90 = statistics.quantiles(vals, n=10)[-1] if len(vals) > 1 else vals[0]
            p50, mean = statistics.median(vals), statistics.fmean(vals)
            print(f"{name:34} {p50:8.3f} {p90:8.3f} {mean:8.3f} {len(vals):5d}")
    for line in CPU_REPORT:
        print(line)
    dw = stage_table(direct_marks, direct_starts)
    print("mcp-direct: " + ", ".join(f"{k} p50 {statistics.median(v):.3f}" for k, v in dw.items()))


ORDER = [
    "A.start", "A.send2", "S.recv2", "S.send2", "C.recv2", "C.answer_in", "C.call_tool_in",
    "C.execute_in", "C.host_call_in", "C.mcp_write", "C.mcp_read", "C.host_call_out", "C.execute_out",
    "C.call_tool_out", "C.answer_out", "C.send3", "S.recv3", "S.send3", "A.recv3", "A.end",
]  # fmt: skip


def _entry() -> dict[str, Any]:
    from smcp.testing.mcp_config import stdio_server_entry

    return dict(stdio_server_entry(sys.executable, [str(TOOLBOX), "stdio"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", default="driver", choices=["driver", "server", "computer", "bare"])
    ap.add_argument("--log", default="")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--server", default="ours", choices=["ours", "ours-std"])
    ap.add_argument(
        "--cpu", action="store_true", help="also calls/s and CPU per call per process, 16 in flight"
    )
    ap.add_argument(
        "--profile-computer",
        default="",
        metavar="PATH",
        help="implies --cpu; py-spy (raw, 200 Hz) of the Computer during the c16 window to PATH",
    )
    ap.add_argument(
        "--profile-role",
        default="computer",
        choices=["computer", "agent", "server"],
        help="the process --profile-computer samples (the agent is this driver's own process)",
    )
    ap.add_argument("--conc", type=int, default=16, help="calls in flight in the --cpu windows")
    ap.add_argument(
        "--computer-loop", default="auto", choices=["auto", "asyncio", "uvloop"], help="the Computer's --loop"
    )
    ap.add_argument(
        "--null-mcp",
        action="store_true",
        help="the Computer answers with a canned result instead of calling MCP (its own cost)",
    )
    ap.add_argument("rest", nargs="*")
    args = ap.parse_args()
    if args.profile_computer:
        global PROFILE_PATH, PROFILE_ROLE
        PROFILE_PATH, PROFILE_ROLE, args.cpu = args.profile_computer, args.profile_role, True
    if args.role == "driver":
        driver(args)
    elif args.role == "bare":
        bare_main(args.conc)
    else:
        role_main(args.role, args.log, args.rest)


if __name__ == "__main__":
    main()
