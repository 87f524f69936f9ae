"""A headless official Computer: ``a2c_smcp.computer.Computer`` + ``SMCPComputerClient``.

Runs inside the official venv::

    python official_computer.py --url U --token T --office O --name N --config mcp.json [--auto-apply]
        [--landing-root DIR] [--socketio-path P]

``--config`` is an official-shaped ``mcp.json`` (``{"servers": {...}, "inputs": [...]}``). Every
server entry (its map key is its ``name``) is validated with the SDK's ``MCPServerConfig`` model and
the inputs with ``MCPServerInput``; they are handed to ``Computer(mcp_servers=..., inputs=...)`` as a
host program does (the embed scope: ``Computer.boot_up()`` mounts only these; a flag-scope file is
not mounted at boot). ``--auto-apply`` sets ``default_tool_meta.auto_apply = true`` on every server
that does not set ``auto_apply`` itself (without it every tool call waits for a confirmation that
never comes). ``--landing-root`` writes a flag-scope ``settings.json`` with ``landingRoot`` so
``client:put_blob`` is allowed.

The process connects, joins the office, prints ``READY`` and serves until SIGTERM/SIGINT; a
connect or join failure prints ``FAILED <reason>`` and exits with status 2. Keep HOME/XDG pointed at
a per-test folder (the harness does): the official Computer writes state under them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from official_common import emit_line, import_official, peer_arguments

NAMESPACE = "/smcp"


def with_auto_apply(config: dict[str, Any]) -> dict[str, Any]:
    servers = config.get("servers") or {}
    for server in servers.values():
        meta = server.get("default_tool_meta") or {}
        meta.setdefault("auto_apply", True)
        server["default_tool_meta"] = meta
    return config


def load_config(args: argparse.Namespace) -> tuple[set[Any], set[Any]]:
    """Parse the mcp.json into the official models: (server configs, inputs)."""
    from a2c_smcp.computer.mcp_clients.model import MCPServerConfig, MCPServerInput
    from pydantic import TypeAdapter

    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    if args.auto_apply:
        config = with_auto_apply(config)
    server_model: TypeAdapter[Any] = TypeAdapter(MCPServerConfig)
    input_model: TypeAdapter[Any] = TypeAdapter(MCPServerInput)
    servers = {
        server_model.validate_python({"name": name, **body}) for name, body in config["servers"].items()
    }
    inputs = {input_model.validate_python(item) for item in config.get("inputs") or []}
    return servers, inputs


def prepare_settings(args: argparse.Namespace) -> Path | None:
    work = Path.home() / ".smcp-e2e"
    work.mkdir(parents=True, exist_ok=True)
    settings_path: Path | None = None
    if args.landing_root:
        Path(args.landing_root).mkdir(parents=True, exist_ok=True)
        settings_path = work / f"{args.name}.settings.json"
        settings_path.write_text(
            json.dumps({"landingRoot": str(Path(args.landing_root).resolve())}), encoding="utf-8"
        )
    return settings_path


async def run(args: argparse.Namespace) -> int:
    import_official()
    from a2c_smcp.computer import Computer, SMCPComputerClient

    servers, inputs = load_config(args)
    settings_path = prepare_settings(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    computer = Computer(
        name=args.name,
        mcp_servers=servers,
        inputs=inputs,
        flag_settings_path=settings_path,
        project_root=Path.cwd(),
    )
    client = SMCPComputerClient(computer=computer)
    try:
        await asyncio.wait_for(computer.boot_up(), args.timeout)
        await asyncio.wait_for(
            client.connect(
                args.url,
                auth={"token": args.token},
                namespaces=[NAMESPACE],
                socketio_path=args.socketio_path,
            ),
            args.timeout,
        )
        await asyncio.wait_for(client.join_office(args.office), args.timeout)
    except Exception as exc:  # reported on stdout for the harness, then exit
        emit_line(f"FAILED {type(exc).__name__}: {exc}")
        await shutdown(computer, client)
        return 2
    emit_line("READY")
    await stop.wait()
    await shutdown(computer, client)
    return 0


async def shutdown(computer: Any, client: Any) -> None:
    # SMCPComputerClient.disconnect() can wait a long time; every step is bounded.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), 3)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(computer.shutdown(), 10)


def main() -> None:
    parser = peer_arguments(__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--auto-apply", action="store_true")
    parser.add_argument("--landing-root", default=None)
    parser.add_argument("--timeout", type=float, default=30.0, help="bound for boot, connect and join")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
