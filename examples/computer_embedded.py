"""Embed a Computer in your own program: host an MCP server, decide on each call, serve an office.

    python examples/computer_embedded.py --url http://127.0.0.1:8000 --token secret --office o1

It hosts ``demo/desk_tools.py`` on a sandbox folder (the folder this file is in), lets
``desk__calculate`` and ``desk__now`` run and refuses every other tool in its ``confirm``
callback (a real host would ask its user there). Prints ``SERVING <office>`` once joined and
stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from smcp.computer import Computer, ComputerLink, parse_config

HERE = Path(__file__).resolve().parent
ALLOWED = {"desk__calculate", "desk__now"}


async def confirm(tool: str, params: dict[str, Any]) -> bool:
    """Called before every tool call that is not ``auto_apply``; False refuses it."""
    allowed = tool in ALLOWED
    logging.getLogger("example").info("%s %s(%s)", "running" if allowed else "refusing", tool, params)
    return allowed


async def main(url: str, token: str, office: str, name: str) -> None:
    config = parse_config(
        {
            "servers": {
                "desk": {
                    "type": "stdio",
                    "server_parameters": {
                        "command": sys.executable,
                        "args": [str(HERE / "demo" / "desk_tools.py"), "--sandbox", str(HERE)],
                    },
                }
            },
            "inputs": [],
        }
    )
    if config.errors:
        raise SystemExit(f"invalid configuration: {config.errors}")

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)

    computer = Computer(name, config.servers, confirm=confirm)
    async with computer, ComputerLink(computer, url, token=token) as link:  # start servers, then connect
        await link.join(office)
        print(f"SERVING {office} with {len(computer.tools())} tools", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--office", default="o1")
    parser.add_argument("--name", default="embedded")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main(args.url, args.token, args.office, args.name))
