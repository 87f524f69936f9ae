"""The operator console: a page at ``/console`` and a JSON API at ``/api/v1/...``, behind an admin token.

Read-only unless built with ``actions=True`` (disconnect a session, call a tool by hand). The page
is plain HTML, CSS and JavaScript shipped in ``static/``; it updates itself from a Server-Sent
Events stream (``/api/v1/events``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import socket
import time
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from smcp.core.events import ServerEvent
from smcp.core.roles import Role
from smcp.server.asgi._console_ops import ToolCache, admin_session, call_tool, disconnect
from smcp.server.asgi._console_state import CallLog, InFlight

if TYPE_CHECKING:
    from smcp.server.core import Session, SMCPServer
    from smcp.server.core._gate import Receive, Scope, Send

__all__ = ["Console"]

log = logging.getLogger("smcp.server")

COOKIE = "smcp_console"
#: Header a browser request must carry to use an action with the cookie (no cross-site form can).
ACTION_HEADER = "x-smcp-console"
MAX_BODY = 256 * 1024
MAX_LIMIT = 500
#: Seconds between two snapshots on the event stream.
PUSH_INTERVAL = 1.0

_STATIC = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def default_node_id() -> str:
    """``host:pid``: which process served the page."""
    return f"{socket.gethostname()}:{os.getpid()}"


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Console:
    """The console of one server. Building it installs its call listener and handler wrappers."""

    def __init__(
        self, server: SMCPServer, token: str, *, actions: bool = False, node_id: str | None = None
    ) -> None:
        if not token:
            raise ValueError("the console needs a non-empty admin token")
        self.server = server
        self.actions = actions
        cluster = getattr(server, "cluster", None)
        self.node_id = node_id or (cluster.node if cluster is not None else None) or default_node_id()
        self._token = token.encode()
        self._session_value = hmac.new(self._token, b"smcp-console-session", hashlib.sha256).hexdigest()
        self.calls = CallLog()
        self.in_flight = InFlight()
        self._admin_sessions: dict[str, Session] = {}  # the console's own calls in flight, by sid
        self.tools = ToolCache(server)
        self.calls.observers.append(self.tools.observe)
        self.started = time.time()
        self._closed = asyncio.Event()
        server.add_call_listener(self.calls)
        self._wrap_handlers()

    def _wrap_handlers(self) -> None:
        self.server.wrap_handlers(self.in_flight.wrap)
        tools = self.tools

        def forget_tools(event: str, handler: Any) -> Any:
            async def tool_list_changed(sid: str, *args: Any) -> Any:
                tools.forget(sid)
                return await handler(sid, *args)

            return tool_list_changed

        self.server.wrap_handlers(forget_tools, [ServerEvent.UPDATE_TOOL_LIST.value])

    def close(self) -> None:
        """End every open event stream (the server is shutting down)."""
        self._closed.set()

    @staticmethod
    def handles(path: str) -> bool:
        return path == "/console" or path.startswith(("/console/", "/api/v1/"))

    # -- credentials --------------------------------------------------------------------------

    def _authorized(self, scope: Scope) -> bool:
        headers = _headers(scope)
        given = headers.get("authorization", "")
        if given[:7].lower() == "bearer ":
            return hmac.compare_digest(given[7:].strip().encode(), self._token)
        cookie = _cookies(headers.get("cookie", "")).get(COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode(), self._session_value.encode())

    def _cookie_header(self, scope: Scope, value: str, max_age: int) -> tuple[bytes, bytes]:
        path = (scope.get("root_path", "") or "") + "/"
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        text = f"{COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        return b"set-cookie", text.encode()

    # -- routing ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method = scope.get("method", "GET")
        try:
            if path == "/console":
                await self._page(scope, receive, send, method)
            elif path == "/console/":
                await _respond(send, 308, b"", b"text/plain", [(b"location", self._url(scope, "/console"))])
            elif path == "/console/login":
                await self._login(scope, receive, send, method)
            elif path == "/console/logout":
                _require_method(method, "POST")
                await _respond(
                    send,
                    303,
                    b"",
                    b"text/plain",
                    [(b"location", self._url(scope, "/console")), self._cookie_header(scope, "", 0)],
                )
            elif path.startswith("/console/static/"):
                await self._static(send, path[len("/console/static/") :])
            elif path.startswith("/api/v1/"):
                if not self._authorized(scope):
                    raise _HTTPError(401, "admin token required (Authorization: Bearer <token>)")
                await self._api(scope, receive, send, method, path[len("/api/v1/") :].rstrip("/"))
            else:
                raise _HTTPError(404, "not found")
        except _HTTPError as exc:
            extra = [(b"www-authenticate", b'Bearer realm="smcp-console"')] if exc.status == 401 else []
            body = json.dumps({"error": exc.message, "status": exc.status}).encode()
            await _respond(send, exc.status, body, b"application/json", extra)

    def _url(self, scope: Scope, path: str) -> bytes:
        return ((scope.get("root_path", "") or "") + path).encode()

    async def _page(self, scope: Scope, receive: Receive, send: Send, method: str) -> None:
        _require_method(method, "GET")
        if self._authorized(scope):
            await _respond(send, 200, _html(scope, "console.html"), b"text/html; charset=utf-8")
        else:
            await _respond(send, 401, _login_page(scope, ""), b"text/html; charset=utf-8")

    async def _login(self, scope: Scope, receive: Receive, send: Send, method: str) -> None:
        _require_method(method, "POST")
        form = parse_qs((await _body(receive)).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        if given and hmac.compare_digest(given.encode(), self._token):
            headers = [
                (b"location", self._url(scope, "/console")),
                self._cookie_header(scope, self._session_value, 12 * 3600),
            ]
            await _respond(send, 303, b"", b"text/plain", headers)
            return
        log.warning("console: refused a login with a wrong admin token")
        page = _login_page(scope, "Refused: that is not the admin token.")
        await _respond(send, 401, page, b"text/html; charset=utf-8")

    async def _static(self, send: Send, name: str) -> None:
        kind = _STATIC.get(name)
        if kind is None:
            raise _HTTPError(404, "not found")
        await _respond(send, 200, _asset(name), kind.encode())

    async def _api(self, scope: Scope, receive: Receive, send: Send, method: str, route: str) -> None:
        parts = [unquote(p) for p in route.split("/")] if route else []
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if method == "POST":
            await self._action(scope, receive, send, parts)
            return
        _require_method(method, "GET")
        if parts == ["offices"]:
            result: Any = {"node": self.node_id, "offices": await self.offices()}
        elif len(parts) == 2 and parts[0] == "offices":
            result = await self.office(parts[1], fetch_tools=True)
            if result is None:
                raise _HTTPError(404, f"office {parts[1]!r} has no members")
        elif parts == ["calls"]:
            limit = _int(query, "limit", 50, 0, MAX_LIMIT)
            result = {
                "node": self.node_id,
                "in_flight": await self.in_flight_calls(),
                "recent": self.calls.last(limit),
            }
        elif parts == ["stats"]:
            result = await self.stats(series=True)
        elif parts == ["events"]:
            await self._events(receive, send)
            return
        else:
            raise _HTTPError(404, "no such API route")
        await _respond(send, 200, json.dumps(result).encode(), b"application/json")

    async def _action(self, scope: Scope, receive: Receive, send: Send, parts: list[str]) -> None:
        headers = _headers(scope)
        if not headers.get("authorization") and headers.get(ACTION_HEADER) != "1":
            raise _HTTPError(403, f"a browser action needs the {ACTION_HEADER}: 1 header")
        if not self.actions:
            raise _HTTPError(403, "admin actions are off; start the server with --admin-actions")
        if len(parts) == 3 and parts[0] == "sessions" and parts[2] == "disconnect":
            if not await disconnect(self.server, parts[1]):
                raise _HTTPError(404, f"no session {parts[1]!r}")
            result: Any = {"disconnected": parts[1]}
        elif len(parts) == 5 and parts[0] == "offices" and parts[2] == "computers" and parts[4] == "call":
            try:
                body = json.loads(await _body(receive) or b"{}")
            except ValueError:
                raise _HTTPError(400, "the body must be a JSON object") from None
            tool, params, timeout = _call_body(body)
            session = admin_session(parts[1])
            self._admin_sessions[session.sid] = session
            try:
                answer = await call_tool(self.server, session, parts[3], tool, params, seconds=timeout)
            finally:
                del self._admin_sessions[session.sid]
            result = {"answer": answer}
        else:
            raise _HTTPError(404, "no such action")
        await _respond(send, 200, json.dumps(result).encode(), b"application/json")

    # -- data -----------------------------------------------------------------------------------

    async def offices(self, *, tools: bool = True) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for office_id in sorted(await self.server.registry.offices()):
            office = await self.office(office_id, fetch_tools=False, tools=tools)
            if office is not None:
                out.append(office)
        return out

    async def office(self, office_id: str, *, fetch_tools: bool, tools: bool = True) -> dict[str, Any] | None:
        members = await self.server.registry.members(office_id)
        if not members:
            return None
        if fetch_tools:
            await asyncio.gather(
                *(
                    self.tools.fetch(m)
                    for m in members
                    if m.role == Role.COMPUTER and self.tools.cached(m.sid) is None
                )
            )
        agents = [self._member(m) for m in members if m.role == Role.AGENT]
        computers = []
        for m in members:
            if m.role != Role.COMPUTER:
                continue
            entry = self._member(m)
            if tools:
                listed = self.tools.cached(m.sid)
                if listed is None:
                    self.tools.refresh_soon(m)
                entry["tools"] = listed
                entry["forbidden"] = self.tools.forbidden(m.sid)
            computers.append(entry)
        return {"id": office_id, "agents": agents, "computers": computers}

    @staticmethod
    def _member(session: Session) -> dict[str, Any]:
        return {
            "sid": session.sid,
            "name": session.name,
            "role": session.role,
            "principal": None if session.principal is None else session.principal.id,
            "a2c_version": session.a2c_version,
        }

    async def in_flight_calls(self) -> list[dict[str, Any]]:
        registry = self.server.registry
        offices: dict[str, str | None] = {}
        for sid in self.in_flight.sids():
            session = self._admin_sessions.get(sid) or await registry.get(sid)
            offices[sid] = None if session is None else session.office
        return self.in_flight.snapshot(offices.get)

    async def _nodes(self) -> list[str]:
        cluster = getattr(self.server, "cluster", None)
        if cluster is not None:
            try:
                return list(await cluster.nodes())
            except Exception:
                log.debug("listing the cluster's nodes failed", exc_info=True)
        return [self.node_id]

    async def stats(self, *, series: bool) -> dict[str, Any]:
        metrics = self.server.metrics
        offices = await self.offices(tools=False)
        agents = sum(len(o["agents"]) for o in offices)
        computers = sum(len(o["computers"]) for o in offices)
        out: dict[str, Any] = {
            "node": self.node_id,
            "nodes": await self._nodes(),
            "time": round(time.time(), 3),
            "up_s": round(time.time() - self.started, 1),
            "actions": self.actions,
            "connections": {
                "total": metrics.connections,
                "agents": agents,
                "computers": computers,
                "not_in_office": max(0, metrics.connections - agents - computers),
            },
            "offices": len(offices),
            "in_flight": len(self.in_flight),
            "calls_total": self.calls.total,
        }
        if series:
            out["series"] = self.calls.series.snapshot()
        return out

    async def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, in one object (one event of the stream)."""
        return {
            "stats": await self.stats(series=True),
            "offices": await self.offices(),
            "in_flight": await self.in_flight_calls(),
            "recent": self.calls.last(50),
        }

    async def _events(self, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), *_SECURITY_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        gone = asyncio.ensure_future(_wait_disconnect(receive))
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await send({"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True})
            while not gone.done() and not closed.done() and not self.server.closing:
                data = json.dumps(await self.snapshot(), separators=(",", ":"))
                await send(
                    {
                        "type": "http.response.body",
                        "body": f"event: snapshot\ndata: {data}\n\n".encode(),
                        "more_body": True,
                    }
                )
                await asyncio.wait({gone, closed}, timeout=PUSH_INTERVAL)
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            for task in (gone, closed):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _call_body(body: Any) -> tuple[str, dict[str, Any], int]:
    if not isinstance(body, dict):
        raise _HTTPError(400, "the body must be a JSON object")
    tool = body.get("tool")
    params = body.get("params", {})
    timeout = body.get("timeout", 30)
    if not isinstance(tool, str) or not tool:
        raise _HTTPError(400, "'tool' must be the tool's name")
    if not isinstance(params, dict):
        raise _HTTPError(400, "'params' must be a JSON object")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 600:
        raise _HTTPError(400, "'timeout' must be whole seconds from 1 to 600")
    return tool, params, timeout


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _HTTPError(400, "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _HTTPError(413, f"the body is over {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _require_method(method: str, allowed: str) -> None:
    if method != allowed:
        raise _HTTPError(405, f"use {allowed}")


def _int(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    values = query.get(name)
    if not values:
        return default
    try:
        value = int(values[0])
    except ValueError:
        raise _HTTPError(400, f"{name} must be a whole number") from None
    return max(low, min(high, value))


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


def _asset(name: str) -> bytes:
    return resources.files("smcp.server.asgi").joinpath("static", name).read_bytes()


def _html(scope: Scope, name: str, message: str = "") -> bytes:
    """A page of ``static/`` with its ``<base>`` at the app's root (its links are relative to it)."""
    import html

    page = _asset(name).decode()
    base = html.escape((scope.get("root_path", "") or "") + "/")
    page = page.replace("<head>", f'<head>\n<base href="{base}">', 1)
    note = f'<p class="refused" role="alert">{html.escape(message)}</p>' if message else ""
    return page.replace("<!--message-->", note).encode()


def _login_page(scope: Scope, message: str) -> bytes:
    return _html(scope, "login.html", message)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *_SECURITY_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
