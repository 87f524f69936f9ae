"""Connection URL and version-rejection handling (PROTOCOL §2.1, §2.2)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from smcp.core.errors import ProtocolVersionError
from smcp.core.versioning import PROTOCOL_VERSION, VERSION_QUERY_PARAM

logger = logging.getLogger("smcp.agent")


def handshake_url(url: str, version: str = PROTOCOL_VERSION) -> str:
    """``url`` with ``a2c_version=<version>`` first in the query; a caller's own value is dropped."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != VERSION_QUERY_PARAM]
    query.insert(0, (VERSION_QUERY_PARAM, version))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def version_error_from_body(body: Any) -> ProtocolVersionError | None:
    """The 4008 error described by a gate body (dict or JSON text), else ``None``."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if not isinstance(body, dict) or body.get("code") != 4008:
        return None
    fields = {
        k: str(body[k])
        for k in ("server_version", "client_version", "min_supported", "max_supported")
        if k in body
    }
    message = body.get("message")
    return ProtocolVersionError(message if isinstance(message, str) else None, fields=fields)


def version_error_from_exception(exc: BaseException) -> ProtocolVersionError | None:
    """Recover a 4008 body from a python-socketio/engineio ``ConnectionError`` chain."""
    seen: BaseException | None = exc
    while seen is not None:
        for arg in getattr(seen, "args", ())[1:2]:
            found = version_error_from_body(arg)
            if found is not None:
                return found
        if seen.args:
            found = version_error_from_body(seen.args[0]) if isinstance(seen.args[0], str) else None
            if found is not None:
                return found
        seen = seen.__cause__ or seen.__context__
    return None


async def probe_version_gate(
    url: str,
    socketio_path: str,
    headers: dict[str, str],
    timeout: float,  # noqa: ASYNC109
) -> ProtocolVersionError | None:
    """Ask the gate over plain HTTP (one polling handshake) whether it rejects our version.

    A websocket-first handshake that the gate refuses carries no readable body (or ends with
    close code 4900), so after a failed websocket connect we ask once over polling.
    """
    import aiohttp

    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/" + socketio_path.strip("/") + "/"
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("EIO", "4"), ("transport", "polling")]
    probe = urlunsplit((parts.scheme.replace("ws", "http", 1), parts.netloc, path, urlencode(query), ""))
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(probe, headers=headers) as resp,
        ):
            if resp.status != 400:
                return None
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.debug("version probe of %s failed: %s", probe, exc)
        return None
    return version_error_from_body(text)
