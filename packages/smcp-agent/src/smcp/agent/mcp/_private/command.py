"""What ``smcp-agent mcp`` runs once the Agent has joined the office."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from smcp.core.errors import ConfigError

if TYPE_CHECKING:
    from smcp.agent._client import AsyncAgent


def parse_http(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a pair; raises :class:`ConfigError`."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--http wants HOST:PORT (e.g. 127.0.0.1:8765), got {value!r}")
    return host, int(port)


def _listening(port: int) -> None:
    sys.stdout.write(f"LISTENING {port}\n")
    sys.stdout.flush()


async def run(
    agent: AsyncAgent,
    *,
    computers: list[str] | None,
    http: tuple[str, int] | None,
    bearer_token: str | None,
    call_timeout: float,
    elicit_confirmation: bool = True,
) -> int:
    from smcp.agent.mcp import serve

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="smcp-agent mcp: %(message)s")
    await serve(
        agent,
        computers=computers or None,
        call_timeout=call_timeout,
        http=http,
        bearer_token=bearer_token,
        on_listening=_listening,
        elicit_confirmation=elicit_confirmation,
    )
    return 0
