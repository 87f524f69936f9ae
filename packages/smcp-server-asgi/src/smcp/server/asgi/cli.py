"""The ``smcp-server`` command: the SMCP server on uvicorn.

``smcp-server --host 127.0.0.1 --port 8000 --token TOKEN`` (or ``SMCP_TOKEN``). With
``--port 0`` a free port is chosen; the command prints a human line with the URL and then
``LISTENING <port>`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

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
    args = build_parser().parse_args(argv)
    token = args.token or os.environ.get("SMCP_TOKEN") or None
    if token is None and not args.insecure_no_auth:
        print(
            "smcp-server: no token; pass --token TOKEN or set SMCP_TOKEN "
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
        )
    except ValueError as exc:
        print(f"smcp-server: {exc}", file=sys.stderr)
        return 2
    auth = TokenAuth(token) if token is not None else AllowAll()
    json_module = fast_json() if args.json == "auto" else json
    app = create_app(
        SMCPServer(settings, auth, json=json_module),
        path=args.path,
        admin_token=admin_token,
        admin_actions=args.admin_actions,
    )

    config = uvicorn.Config(
        app,
        # The command runs the app's startup and shutdown itself: a lifespan task would be left
        # waiting (and logged with a traceback when cancelled) after a second Ctrl-C.
        lifespan="off",
        log_config=None,
        loop=args.loop,
        http=args.http,
        ws=args.ws,
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
        await app.startup()
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
                "token" if token else "NONE (insecure)",
            )
        await task

    config.load()
    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(run())
    finally:
        if flush_traces is not None:
            flush_traces()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
