"""The ``smcp-server`` command: the SMCP server on uvicorn.

``smcp-server --host 127.0.0.1 --port 8000 --token TOKEN`` (or ``SMCP_TOKEN``), or signed tokens
with ``--jwt-secret-file F`` / ``--jwt-public-key F`` / ``--jwt-jwks-url URL``. With ``--port 0`` a
free port is chosen; the command prints a human line with the URL and then ``LISTENING <port>``
once it accepts connections. ``smcp-server token issue ...`` prints a signed token for development.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from smcp.server.asgi._gc import DEFAULT_GC_THRESHOLD, tune_gc
from smcp.server.asgi._uvicorn import uvicorn_ws_protocol
from smcp.server.asgi._version import __version__
from smcp.server.core._settings import ServerSettings

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0-65535)")
    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0 seconds")
    return value


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90, 15m, 1h, 7d)") from None


def _read_secret(path: str | None, prog: str) -> str | None:
    """The HS256 secret from ``path`` (stripped) or ``SMCP_JWT_SECRET``; never from the command line."""
    if path is not None:
        try:
            secret = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SystemExit(f"{prog}: cannot read the JWT secret file {path}: {exc.strerror}") from None
        if not secret:
            raise SystemExit(f"{prog}: the JWT secret file {path} is empty")
        return secret
    return os.environ.get("SMCP_JWT_SECRET") or None


def build_token_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="smcp-server token issue", description="Print a signed (HS256) token for development.")
    p.add_argument(
        "--secret-file", default=None, help="file holding the HS256 secret (or env SMCP_JWT_SECRET)"
    )
    p.add_argument("--sub", required=True, help="the principal (claim sub)")
    p.add_argument("--role", required=True, choices=["agent", "computer"], help="claim smcp_role")
    p.add_argument(
        "--office", action="append", required=True, help="an office it may join (repeat; '*' for any)"
    )
    p.add_argument("--name", default=None, help="the only name it may join under (claim smcp_name)")
    p.add_argument("--tools", action="append", default=None, help="a tool-name pattern it may call (repeat)")
    p.add_argument("--ttl", type=_duration, default=3600.0, help="lifetime: 90, 15m, 1h, 7d (default 1h)")
    p.add_argument("--issuer", default=None, help="claim iss")
    p.add_argument("--audience", default=None, help="claim aud")
    return p


def issue_main(argv: Sequence[str]) -> int:
    """``smcp-server token issue``: print one token on stdout."""
    parser = build_token_parser()
    args = parser.parse_args(argv)
    secret = _read_secret(args.secret_file, parser.prog)
    if secret is None:
        print(f"{parser.prog}: no secret; pass --secret-file F or set SMCP_JWT_SECRET", file=sys.stderr)
        return 2
    from smcp.server.core import issue_token

    try:
        token = issue_token(
            secret,
            sub=args.sub,
            role=args.role,
            offices=args.office,
            name=args.name,
            tools=args.tools,
            ttl=args.ttl,
            issuer=args.issuer,
            audience=args.audience,
        )
    except ImportError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    d = ServerSettings()
    p = _Parser(prog="smcp-server", description="Run an A2C-SMCP server (protocol 0.4).")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default %(default)s)")
    p.add_argument(
        "--port", type=_port, default=8000, help="TCP port; 0 picks a free one (default %(default)s)"
    )
    p.add_argument("--token", default=None, help="shared token clients send in auth.token (env SMCP_TOKEN)")
    p.add_argument(
        "--insecure-no-auth", action="store_true", help="accept every connection (development only)"
    )
    jwt = p.add_mutually_exclusive_group()
    jwt.add_argument(
        "--jwt-secret-file",
        default=None,
        help="verify HS256 JWTs with the secret in this file (or env SMCP_JWT_SECRET)",
    )
    jwt.add_argument(
        "--jwt-public-key", default=None, help="verify RS256/ES256 JWTs with this PEM public key file"
    )
    jwt.add_argument("--jwt-jwks-url", default=None, help="verify JWTs with the keys of this JWKS URL")
    p.add_argument("--jwt-issuer", default=None, help="required JWT issuer (claim iss)")
    p.add_argument("--jwt-audience", default=None, help="required JWT audience (claim aud)")
    p.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        help="a browser origin allowed to connect (repeat; '*' for any); default: same origin only",
    )
    p.add_argument(
        "--audit-log", default=None, help="append audit records (JSON lines) to FILE; reopened on SIGHUP"
    )
    p.add_argument(
        "--audit-to-log", action="store_true", help="also send audit records to the smcp.audit logger"
    )
    p.add_argument("--path", default="/socket.io", help="Engine.IO path (default %(default)s)")
    p.add_argument(
        "--admin-token-file",
        default=None,
        metavar="PATH",
        help="turn on the operator console (/console, /api/v1) with the admin token in this file "
        "(or set SMCP_ADMIN_TOKEN)",
    )
    p.add_argument(
        "--admin-token",
        default=None,
        help="the admin token itself (visible in the process list: prefer SMCP_ADMIN_TOKEN)",
    )
    p.add_argument(
        "--admin-actions",
        action="store_true",
        help="let the console disconnect sessions and call tools as the admin (default: read-only)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=d.grace,
        help="seconds added to a tool call's timeout (default %(default)s)",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=d.default_timeout,
        help="relay deadline of other client:* in seconds (default %(default)s)",
    )
    p.add_argument(
        "--max-message-size",
        type=int,
        default=d.max_message_size,
        help="largest Socket.IO message in bytes (default %(default)s)",
    )
    p.add_argument(
        "--output-limit",
        type=int,
        default=None,
        help="bytes that may wait to be sent to one connection before it is dropped "
        "(default 4 x --max-message-size)",
    )
    p.add_argument(
        "--max-agents-per-office",
        type=int,
        default=d.max_agents_per_office,
        help="agents allowed per office (default %(default)s)",
    )
    p.add_argument(
        "--ping-interval",
        type=_seconds,
        default=d.ping_interval,
        help="Engine.IO heartbeat interval in seconds (default %(default)s)",
    )
    p.add_argument(
        "--ping-timeout",
        type=_seconds,
        default=d.ping_timeout,
        help="seconds without a heartbeat answer before a session is dropped (default %(default)s)",
    )
    p.add_argument(
        "--gc-threshold",
        type=int,
        default=DEFAULT_GC_THRESHOLD,
        help="first-generation threshold of Python's garbage collector, which then also freezes "
        "what exists at start-up (default %(default)s; Python's own is 700; 0 keeps Python's settings)",
    )
    for flag, kind, help_text in (
        ("max-connections", int, "connections the server accepts at a time"),
        ("max-connections-per-principal", int, "connections one principal may hold"),
        ("max-calls-in-flight-per-principal", int, "client:* requests of one principal in flight"),
        ("max-pending-per-connection", int, "client:* requests of one connection waiting for answers"),
        ("calls-per-second", float, "client:* requests per second and principal (default: no limit)"),
        ("call-burst", int, "requests allowed at once by --calls-per-second (default: one second's worth)"),
    ):
        default = getattr(d, flag.replace("-", "_"))
        p.add_argument(f"--{flag}", type=kind, default=default, help=f"{help_text} (default {default})")
    p.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="default info"
    )
    p.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per line on stderr (time, level, logger, message, request fields)",
    )
    p.add_argument("--json-logs", action="store_true", help="the same as --log-format json")
    p.add_argument(
        "--json", default="auto", choices=["auto", "stdlib"], help="auto: orjson when installed (default)"
    )
    p.add_argument(
        "--loop", default="auto", help="uvicorn event loop: auto (uvloop if installed), asyncio, uvloop"
    )
    p.add_argument("--http", default="auto", help="uvicorn HTTP parser: auto, h11, httptools")
    p.add_argument("--ws", default="auto", help="uvicorn WebSocket implementation: auto, websockets, wsproto")
    p.add_argument(
        "--redis-url",
        default=None,
        help="cluster mode: share sessions with the other nodes through this Redis "
        "(redis://host:6379/0; env SMCP_REDIS_URL; needs smcp-server-core[redis])",
    )
    p.add_argument(
        "--cluster-prefix", default="smcp", help="Redis key prefix of the cluster (default %(default)s)"
    )
    p.add_argument(
        "--node-ttl",
        type=_seconds,
        default=3.0,
        help="seconds after its last heartbeat that a silent node is declared dead (default %(default)s)",
    )
    return p


def _configure_logging(level: str, json_logs: bool) -> None:
    from smcp.core import logjson

    handler = logjson.install(level)
    if not json_logs:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn logs every request and WebSocket at INFO: noise and cost on a busy relay.
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def _admin_token(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The console's admin token from --admin-token-file, SMCP_ADMIN_TOKEN or --admin-token; or a problem."""
    token: str | None = None
    if args.admin_token_file:
        try:
            with open(args.admin_token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            return None, f"cannot read --admin-token-file {args.admin_token_file}: {exc.strerror}"
        if not token:
            return None, f"--admin-token-file {args.admin_token_file} is empty"
    token = token or args.admin_token or os.environ.get("SMCP_ADMIN_TOKEN") or None
    if args.admin_actions and token is None:
        return None, "--admin-actions needs an admin token (--admin-token-file or SMCP_ADMIN_TOKEN)"
    return token, None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``smcp-server``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["token", "issue"]:
        return issue_main(argv[2:])
    args = build_parser().parse_args(argv)
    token = args.token or os.environ.get("SMCP_TOKEN") or None
    jwt_secret = _read_secret(args.jwt_secret_file, "smcp-server")
    if args.jwt_public_key or args.jwt_jwks_url:
        jwt_secret = None
    jwt_on = bool(jwt_secret or args.jwt_public_key or args.jwt_jwks_url)
    if token is None and not jwt_on and not args.insecure_no_auth:
        print(
            "smcp-server: no credential check; pass --token TOKEN (or SMCP_TOKEN), --jwt-secret-file F "
            "(or SMCP_JWT_SECRET), --jwt-public-key F or --jwt-jwks-url URL "
            "(or --insecure-no-auth for local development)",
            file=sys.stderr,
        )
        return 2
    admin_token, problem = _admin_token(args)
    if problem is not None:
        print(f"smcp-server: {problem}", file=sys.stderr)
        return 2
    _configure_logging(args.log_level, args.json_logs or args.log_format == "json")
    from smcp.core._otelsetup import configure_from_env

    try:
        flush_traces = configure_from_env("smcp-server")
    except RuntimeError as exc:
        print(f"smcp-server: {exc}", file=sys.stderr)
        return 1

    import uvicorn

    from smcp.server.asgi._app import create_app
    from smcp.server.asgi._sockets import listen_socket
    from smcp.server.core import AllowAll, SMCPServer, TokenAuth, fast_json

    try:
        settings = ServerSettings(
            grace=args.grace,
            default_timeout=args.request_timeout,
            max_message_size=args.max_message_size,
            max_agents_per_office=args.max_agents_per_office,
            ping_interval=args.ping_interval,
            ping_timeout=args.ping_timeout,
            cors_allowed_origins=_origins(args.cors_origin),
            max_connections=args.max_connections,
            max_connections_per_principal=args.max_connections_per_principal,
            max_calls_in_flight_per_principal=args.max_calls_in_flight_per_principal,
            max_pending_per_connection=args.max_pending_per_connection,
            calls_per_second=args.calls_per_second,
            call_burst=args.call_burst,
            output_limit=args.output_limit,
        )
    except ValueError as exc:
        print(f"smcp-server: {exc}", file=sys.stderr)
        return 2
    auth: Any = TokenAuth(token) if token is not None else AllowAll()
    if jwt_on:
        from smcp.server.core import JWTAuth

        try:
            auth = JWTAuth(
                secret=jwt_secret,
                public_key=Path(args.jwt_public_key) if args.jwt_public_key else None,
                jwks_url=args.jwt_jwks_url,
                issuer=args.jwt_issuer,
                audience=args.jwt_audience,
                fallback=TokenAuth(token) if token is not None else None,
            )
        except (ImportError, OSError, ValueError) as exc:
            print(f"smcp-server: cannot set up JWT verification: {exc}", file=sys.stderr)
            return 2
    json_module = fast_json() if args.json == "auto" else json
    redis_url = args.redis_url or os.environ.get("SMCP_REDIS_URL") or None
    cluster = None
    if redis_url is not None:
        from smcp.server.core import RedisCluster

        try:
            cluster = RedisCluster(
                redis_url, prefix=args.cluster_prefix, node_ttl=args.node_ttl, heartbeat=args.node_ttl / 3
            )
        except (ImportError, ValueError) as exc:
            print(f"smcp-server: {exc}", file=sys.stderr)
            return 2
    smcp = SMCPServer(settings, auth, json=json_module, cluster=cluster)
    trail = _audit_trail(args, smcp)
    app = create_app(smcp, path=args.path, admin_token=admin_token, admin_actions=args.admin_actions)

    config = uvicorn.Config(
        app,
        # The command runs the app's startup and shutdown itself: a lifespan task would be left
        # waiting (and logged with a traceback when cancelled) after a second Ctrl-C.
        lifespan="off",
        log_config=None,
        loop=args.loop,
        http=args.http,
        ws=uvicorn_ws_protocol(args.ws),
        ws_max_size=settings.effective_transport_limit + 64 * 1024,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_timeout)),
        server_header=False,
    )

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Answer in-flight calls while the connections are still open.
            await app.shutdown()
            await super().shutdown(sockets)

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after its shutdown; a clean stop here exits with 0.
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    try:
        sock = listen_socket(args.host, args.port)
    except OSError as exc:
        print(f"smcp-server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    server = _Server(config)
    log = logging.getLogger("smcp.server")

    async def run() -> None:
        if trail is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, trail.reopen)
        await app.startup()
        tune_gc(args.gc_threshold)
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes no event
            await asyncio.sleep(0.01)
        if server.started:
            host = f"[{args.host}]" if ":" in args.host else args.host
            loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
            print(f"smcp-server listening on http://{host}:{port} (Engine.IO path {app.path})", flush=True)
            if app.console is not None:
                mode = "admin actions on" if args.admin_actions else "read-only"
                print(f"operator console at http://{host}:{port}/console ({mode})", flush=True)
            print(f"LISTENING {port}", flush=True)
            log.info(
                "event loop: %s; json: %s; auth: %s",
                loop_name,
                "stdlib" if json_module is json else "orjson",
                "jwt" if jwt_on else "token" if token else "NONE (insecure)",
            )
            if cluster is not None:
                log.info("cluster node %s on %s (prefix %r)", cluster.node, redis_url, cluster.prefix)
        await task
        if trail is not None:
            await asyncio.to_thread(trail.close)

    config.load()
    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(run())
    finally:
        if flush_traces is not None:
            flush_traces()
    return 0


def _origins(values: list[str] | None) -> str | list[str] | None:
    if not values:
        return None
    return "*" if "*" in values else values


def _audit_trail(args: argparse.Namespace, server: Any) -> Any:
    if args.audit_log is None and not args.audit_to_log:
        return None
    from smcp.server.core import AuditTrail, FileSink, LoggerSink

    sinks: list[Any] = []
    if args.audit_log is not None:
        sinks.append(FileSink(args.audit_log))
    if args.audit_to_log:
        sinks.append(LoggerSink())
    trail = AuditTrail(*sinks)
    trail.attach(server)
    return trail


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
