"""A cluster under test: ``smcp-server --redis-url`` nodes, the shipped ``examples/deploy/nginx.conf``
in front of them, a private ``redis-server`` for outage tests, and loopback source-address
forwarders that spread clients over the nodes (nginx hashes the client address).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from smcp.testing import roles
from smcp.testing.processes import ManagedProcess, ProcessManager, listening

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "examples" / "deploy" / "nginx.conf"
SHARED_REDIS = "redis://127.0.0.1:6379/0"


def redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    return listening(host, port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Node:
    server: roles.ServerProcess
    index: int

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def proc(self) -> ManagedProcess:
        return self.server.proc

    async def readyz(self) -> tuple[int, dict[str, str]]:
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(f"{self.url}/readyz")
        return r.status_code, r.json()

    async def metrics(self) -> dict[str, object]:
        async with httpx.AsyncClient(timeout=5) as http:
            data: dict[str, object] = (await http.get(f"{self.url}/metrics?format=json")).json()
        return data


async def start_nodes(
    procs: ProcessManager,
    count: int,
    *,
    redis_url: str = SHARED_REDIS,
    prefix: str | None = None,
    node_ttl: float = 2.0,
    extra_args: tuple[str, ...] = (),
) -> list[Node]:
    prefix = prefix or f"e2e-{uuid.uuid4().hex[:8]}"
    args = ("--redis-url", redis_url, "--cluster-prefix", prefix, "--node-ttl", str(node_ttl), *extra_args)
    servers = await asyncio.gather(
        *(roles.start_server(procs, name=f"node{i}", extra_args=args) for i in range(count))
    )
    return [Node(server, i) for i, server in enumerate(servers)]


async def start_nginx(procs: ProcessManager, nodes: list[Node]) -> int:
    """nginx with the shipped configuration, its upstream pointed at ``nodes``; returns its port."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    assert binary is not None, "nginx is not installed (.ci/run installs it)"
    text = NGINX_CONF.read_text()
    servers = "".join(
        f"        server 127.0.0.1:{n.server.proc.port} max_fails=1 fail_timeout=10s;\n" for n in nodes
    )
    text, count = re.subn(r"(?m)^\s*server 127\.0\.0\.1:800\d[^\n]*\n", "", text)
    assert count == 3, "examples/deploy/nginx.conf no longer lists three upstream servers"
    text = text.replace(
        "        hash $remote_addr consistent;\n", "        hash $remote_addr consistent;\n" + servers
    )
    port = free_port()
    text = text.replace("listen 8080;", f"listen {port};").replace(
        "worker_processes auto;", "worker_processes 1;"
    )
    root = procs.log_dir / "nginx"
    (root / "logs").mkdir(parents=True, exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(text)
    globals_ = f"daemon off; pid {root}/nginx.pid; error_log {root}/error.log warn;"
    temp = "".join(
        f"{kind}_temp_path {root}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(text.replace("http {", "http {\n    " + temp, 1))
    procs.spawn("nginx", [binary, "-p", str(root), "-c", str(conf), "-g", globals_])
    async with asyncio.timeout(10):
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return port
            await asyncio.sleep(0.05)


class SourceForwarder:
    """Listens on 127.0.0.1 and forwards each connection to ``target_port`` from ``source_ip``."""

    def __init__(self, source_ip: str, target_port: int) -> None:
        self.source_ip = source_ip
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> SourceForwarder:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port, local_addr=(self.source_ip, 0)
            )
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        for task in (
            asyncio.ensure_future(pipe(reader, up_writer)),
            asyncio.ensure_future(pipe(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def node_behind(nginx_port: int, source_ip: str) -> str:
    """Which node nginx sends clients from ``source_ip`` to (the ``node`` of ``/readyz``)."""
    async with SourceForwarder(source_ip, nginx_port) as fwd, httpx.AsyncClient(timeout=5) as http:
        body = (await http.get(f"{fwd.url}/readyz")).json()
    return str(body["node"])


async def node_names(nodes: list[Node]) -> list[str]:
    return [(await n.readyz())[1]["node"] for n in nodes]


async def start_private_redis(procs: ProcessManager, port: int | None = None) -> tuple[ManagedProcess, int]:
    """A ``redis-server`` of our own (no persistence) for tests that stop and restart it."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is not installed"
    port = port or free_port()
    proc = procs.spawn(
        f"redis-{port}-{uuid.uuid4().hex[:4]}",
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    )
    async with asyncio.timeout(10):
        while not redis_up(port=port):
            await asyncio.sleep(0.05)
    return proc, port


def dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True)
