"""The Computer: hosted MCP servers, tool execution and confirmation, desktop/skills/blobs."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from smcp.computer import _tracing
from smcp.computer._hosting import (
    HostChange,
    MCPServerHost,
    ServerState,
    ServerStatus,
    Supervision,
    UpstreamAuthError,
)
from smcp.computer._tools import Change, ExposedTool, ToolRegistry, merge_tool_meta
from smcp.core import results
from smcp.core.errors import ErrorCode
from smcp.core.results import META_TOOL_META

if TYPE_CHECKING:
    from smcp.computer._inputs import InputResolver
    from smcp.core.models import (
        GetComputerConfigRet,
        MCPServerConfig,
        MCPServerInput,
        PutBlobReq,
        SMCPTool,
    )

__all__ = [
    "CallRecord",
    "Change",
    "Computer",
    "ConfirmCallback",
    "ExposedTool",
    "ToolResult",
    "merge_tool_meta",
]

logger = logging.getLogger("smcp.computer")

ConfirmCallback = Callable[[str, dict[str, Any]], Awaitable[bool]]
"""``async confirm(exposed_name, params) -> bool``: True approves the call."""

#: Text of a refused-confirmation result: 0.4.2's words (kept for users who match on it), then English.
_LISTED_TOOLS = 50

CONFIRM_REJECTED_TEXT = (
    "工具调用二次确认被拒绝，请稍后再试 / The user refused to confirm this tool call; try again later"
)
HISTORY_SIZE = 10
#: MCP servers started at the same time by default: a laptop with 30 configured servers does not
#: spawn 30 interpreters at once.
DEFAULT_START_CONCURRENCY = 4


class ToolResult(TypedDict):
    """A ``CallToolResult`` as it goes on the wire (docs/protocol.md §9.4); a plain dict at run time."""

    meta: dict[str, Any] | None
    content: list[dict[str, Any]]
    structuredContent: dict[str, Any] | None
    isError: bool


@dataclass(frozen=True)
class CallRecord:
    """One entry of the recent-call history."""

    req_id: str | None
    tool: str
    bundle_id: str
    started: float
    duration: float
    is_error: bool


def _default_dir(env: str, fallback: str, *parts: str) -> Path:
    base = os.environ.get(env) or str(Path.home() / fallback)
    return Path(base, *parts)


class Computer:
    """Hosts MCP servers and executes their tools under exposed names.

    ``confirm`` is asked before every call whose merged config ToolMeta does not say
    ``auto_apply: true``; without it such calls are refused with an error result. Listeners added
    with :meth:`add_listener` get a :class:`Change` when the office should be told
    (``server:update_*``). Servers start at most ``start_concurrency`` at a time, and a server
    that is not running after ``start_timeout`` seconds no longer holds the others up (it is
    reported as still starting, with its error, and keeps trying under supervision).
    """

    def __init__(
        self,
        name: str,
        servers: Sequence[MCPServerConfig] = (),
        inputs: Sequence[MCPServerInput] = (),
        *,
        confirm: ConfirmCallback | None = None,
        resolver: InputResolver | None = None,
        supervision: Supervision | None = None,
        connect_timeout: float = 30.0,
        request_timeout: float = 60.0,
        spool_dir: Path | None = None,
        skill_home: Path | None = None,
        skill_dirs: Sequence[Path] = (),
        landing_root: Path | None = None,
        start_concurrency: int = DEFAULT_START_CONCURRENCY,
        start_timeout: float | None = None,
    ) -> None:
        from smcp.computer._blobs import BlobStore, UploadStore
        from smcp.computer._inputs import InputResolver
        from smcp.computer._skills import SkillRegistry

        self.name = name
        self.confirm = confirm
        self.resolver = resolver if resolver is not None else InputResolver(list(inputs))
        if inputs and resolver is not None:
            self.resolver.set_inputs(list(inputs))
        self.supervision = supervision or Supervision()
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        if start_concurrency < 1:
            raise ValueError(f"start_concurrency must be >= 1, got {start_concurrency}")
        if start_timeout is not None and not start_timeout > 0:
            raise ValueError(f"start_timeout must be > 0 seconds, got {start_timeout}")
        #: How many MCP servers start at the same time.
        self.start_concurrency = start_concurrency
        #: Seconds one server may take to start before the others stop waiting for it (it keeps
        #: trying in the background); ``None``: ``connect_timeout`` + 5 s.
        self.start_timeout = start_timeout
        self.spool_dir = spool_dir or _default_dir("XDG_CACHE_HOME", ".cache", "smcp", "blobspool")
        self.skill_home = skill_home or _default_dir("XDG_DATA_HOME", ".local/share", "smcp", "skills")
        self.skill_dirs = list(skill_dirs)
        self.landing_root = landing_root
        self._listeners: list[Callable[[Change], None]] = []
        self._hosts: dict[str, MCPServerHost] = {}
        for config in servers:
            self._add_host(config)
        self._tools = ToolRegistry()
        self._inflight: dict[str, asyncio.Task[Any]] = {}  # req_id -> the task running that call
        self._cancelled: set[str] = set()
        self.history: collections.deque[CallRecord] = collections.deque(maxlen=HISTORY_SIZE)
        self._window_sets: dict[str, frozenset[str]] = {}
        self._resource_task: asyncio.Task[None] | None = None
        self._resource_dirty: set[str] = set()
        self._blobs = BlobStore(self.spool_dir)
        self._uploads = UploadStore(self.landing_root)
        self._skills = SkillRegistry(
            self.skill_home, self._blobs, user_dirs=self.skill_dirs, request_timeout=request_timeout
        )

    def _add_host(self, config: MCPServerConfig) -> MCPServerHost | None:
        host = MCPServerHost(
            config,
            render=self.resolver.render,
            on_event=self._host_event,
            supervision=self.supervision,
            connect_timeout=self.connect_timeout,
            request_timeout=self.request_timeout,
        )
        if host.bundle_id in self._hosts:
            logger.warning("duplicate bundle_id %r (server %r) ignored", host.bundle_id, config.name)
            return None
        self._hosts[host.bundle_id] = host
        return host

    # --- listeners --------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[Change], None]) -> None:
        """``callback(change)`` whenever the office should hear of a :class:`Change`."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[Change], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _emit(self, kind: Change) -> None:
        for callback in list(self._listeners):
            try:
                callback(kind)
            except Exception:
                logger.exception("change listener failed")

    def _host_event(self, host: MCPServerHost, kind: HostChange, detail: str | None) -> None:
        if kind is HostChange.TOOLS:
            # an MCP tools/list_changed is always forwarded (docs/protocol.md §6.2, as 0.4.2 does),
            # even when the re-read list is unchanged; start/stop changes are announced only when real
            self._tools_changed(force=detail == "list_changed")
            if host.state is not ServerState.RUNNING:
                self._resource_dirty.add(host.bundle_id)
                self._schedule_resource_scan()
        elif kind is HostChange.RESOURCES:
            self._resource_dirty.add(host.bundle_id)
            self._schedule_resource_scan()
        elif kind is HostChange.RESOURCE_UPDATED and detail is not None:
            if detail.startswith("window://"):
                self._emit(Change.DESKTOP)
            elif detail.startswith("skill://"):
                self._schedule_resource_scan()

    def _schedule_resource_scan(self) -> None:
        if self._resource_task is None or self._resource_task.done():
            self._resource_task = asyncio.create_task(self._resource_scan(), name="smcp-resource-scan")

    async def _resource_scan(self) -> None:
        from smcp.computer._resources import list_all_resources

        await asyncio.sleep(0.3)  # trailing debounce
        dirty, self._resource_dirty = self._resource_dirty, set()
        desktop_changed = False
        for bundle in dirty:
            host = self._hosts.get(bundle)
            windows: frozenset[str] = frozenset()
            if host is not None and host.supports_resources:
                try:
                    listed = await list_all_resources(host, request_timeout=self.request_timeout)
                    windows = frozenset(str(r.uri) for r in listed if str(r.uri).startswith("window://"))
                except Exception as exc:
                    logger.warning("MCP server %s: resources/list failed: %s", bundle, exc)
            if self._window_sets.get(bundle, frozenset()) != windows:
                desktop_changed = True
            self._window_sets[bundle] = windows
        if desktop_changed:
            self._emit(Change.DESKTOP)
        try:
            if await self._skills.refresh(self.active_servers()):
                self._emit(Change.SKILLS)
        except Exception as exc:
            logger.warning("skill refresh failed: %s", exc)

    # --- servers ----------------------------------------------------------------------------

    @property
    def servers(self) -> dict[str, MCPServerHost]:
        """Hosted servers by bundle id, in configuration order."""
        return dict(self._hosts)

    def status(self) -> list[ServerStatus]:
        return [h.status() for h in self._hosts.values()]

    @property
    def inputs(self) -> list[MCPServerInput]:
        return self.resolver.inputs

    async def start(self, names: Sequence[str] | None = None) -> list[ServerStatus]:
        """Start the enabled servers (all, or the given bundle ids/names) in parallel."""
        targets = [h for h in self._select(names) if names is not None or not h.config.disabled]
        return await self._start_capped(targets)

    async def _start_capped(
        self, hosts: Sequence[MCPServerHost], *, restart: bool = False
    ) -> list[ServerStatus]:
        """Start ``hosts``, at most :attr:`start_concurrency` at a time, each waited for at most
        :attr:`start_timeout` seconds; the statuses in the order of ``hosts``."""
        gate = asyncio.Semaphore(self.start_concurrency)

        async def one(host: MCPServerHost) -> ServerStatus:
            async with gate:
                if restart:
                    return await host.restart(timeout=self.start_timeout)
                return await host.start(timeout=self.start_timeout)

        return list(await asyncio.gather(*(one(h) for h in hosts)))

    async def stop(self, names: Sequence[str] | None = None) -> None:
        """Stop servers (all by default) in parallel."""
        await asyncio.gather(*(h.stop() for h in self._select(names)))

    async def restart(self, names: Sequence[str] | None = None) -> list[ServerStatus]:
        return await self._start_capped(self._select(names), restart=True)

    async def close(self) -> None:
        """Stop every server, cancel calls and background work, drop partial uploads."""
        for task in list(self._inflight.values()):
            task.cancel()
        if self._resource_task is not None:
            self._resource_task.cancel()
        await self.stop()
        await self._uploads.close()

    def _select(self, names: Sequence[str] | None) -> list[MCPServerHost]:
        if names is None or "all" in names:
            return list(self._hosts.values())
        out = []
        for key in names:
            host = self._hosts.get(key) or next((h for h in self._hosts.values() if h.name == key), None)
            if host is None:
                raise KeyError(f"no MCP server named {key!r}; known: {', '.join(self._hosts) or 'none'}")
            out.append(host)
        return out

    async def set_servers(
        self, servers: Sequence[MCPServerConfig], inputs: Sequence[MCPServerInput] | None = None
    ) -> None:
        """Replace the configuration: removed or changed servers stop, new or changed ones start."""
        from smcp.computer._config import bundle_id_of

        if inputs is not None:
            self.resolver.set_inputs(list(inputs))
        wanted: dict[str, MCPServerConfig] = {}
        for config in servers:
            wanted.setdefault(bundle_id_of(config), config)
        stale = [h for b, h in self._hosts.items() if b not in wanted or wanted[b] != h.config]
        await asyncio.gather(*(h.stop() for h in stale))
        old = self._hosts
        self._hosts = {}
        to_start: list[MCPServerHost] = []
        for bundle, config in wanted.items():
            current = old.get(bundle)
            if current is not None and current.config == config:
                self._hosts[bundle] = current
            else:
                host = self._add_host(config)
                if host is not None and not config.disabled:
                    to_start.append(host)
        self._emit(Change.CONFIG)
        await self._start_capped(to_start)
        self._tools_changed()

    def _tools_changed(self, *, force: bool = False) -> None:
        if self._tools.changed(self.active_servers()) or force:
            self._emit(Change.TOOLS)

    async def __aenter__(self) -> Computer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def active_servers(self) -> list[MCPServerHost]:
        """Running servers in activation (configuration) order."""
        return [h for h in self._hosts.values() if h.running]

    # --- tools ------------------------------------------------------------------------------

    def _registry(self) -> dict[str, ExposedTool]:
        return self._tools.entries(self.active_servers())

    def tools(self) -> list[SMCPTool]:
        """Every routed tool (cached until a server's tools change)."""
        return [t.tool for t in self._registry().values()]

    def tools_wire(self) -> list[dict[str, Any]]:
        """:meth:`tools` as ``client:get_tools`` sends them (the cached wire dicts; do not mutate)."""
        return [t.wire for t in self._registry().values()]

    def tool(self, exposed_name: str) -> ExposedTool | None:
        return self._registry().get(exposed_name)

    def get_config(self) -> GetComputerConfigRet:
        """The ``client:get_config`` reply: raw declarations of active servers keyed by bundle id."""
        from smcp.core.models import GetComputerConfigRet

        return GetComputerConfigRet.model_validate(self.config_wire())

    def config_wire(self) -> dict[str, Any]:
        """:meth:`get_config` as it goes on the wire."""
        from smcp.core.wire import to_wire

        servers: dict[str, Any] = {}
        for host in self.active_servers():
            raw = to_wire(host.config)
            raw["bundle_id"] = host.bundle_id
            servers.setdefault(host.bundle_id, raw)
        return {"servers": servers, "inputs": [to_wire(i) for i in self.inputs]}

    def recent_bundles(self) -> list[str]:
        """Bundle ids of the last calls, newest first."""
        return [r.bundle_id for r in reversed(self.history)]

    # --- execution --------------------------------------------------------------------------

    async def call_tool(
        self,
        exposed_name: str,
        params: dict[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109
        req_id: str | None = None,
    ) -> ToolResult:
        """Run a tool; returns the ``CallToolResult`` wire dict (errors are results, never raised).

        ``timeout`` (seconds, ``0``/``None`` = none) bounds the MCP call; ``req_id`` makes the call
        cancellable with :meth:`cancel`.
        """
        entry = self._registry().get(exposed_name)
        if entry is None:
            return _typed(self._unknown_tool_result(exposed_name))
        started, started_at = time.monotonic(), time.time()
        run = self._confirm_and_run(entry, params, timeout or None)
        task = asyncio.current_task() if req_id is not None else None
        if task is None or req_id is None:
            result = await run
        else:
            # cancellable in the caller's own task: cancel() cancels it, and the CancelledError that
            # cancel() caused (and no other) becomes the cancelled result
            self._inflight[req_id] = task
            try:
                result = await run
            except asyncio.CancelledError:
                if req_id in self._cancelled and task.uncancel() == 0:
                    result = _typed(results.cancelled_result())
                else:
                    raise
            finally:
                if self._inflight.get(req_id) is task:
                    del self._inflight[req_id]
                    self._cancelled.discard(req_id)
        if self._blobs.needs_sideband(result):  # type: ignore[arg-type]
            try:
                result = _typed(await asyncio.to_thread(self._blobs.apply_sideband, result))  # type: ignore[arg-type]
            except Exception as exc:
                logger.warning("binary sideband failed for %s: %s", exposed_name, exc)
        self.history.append(
            CallRecord(
                req_id,
                exposed_name,
                entry.host.bundle_id,
                started_at,
                time.monotonic() - started,
                bool(result.get("isError")),
            )
        )
        return result

    def _unknown_tool_result(self, exposed_name: str) -> dict[str, Any]:
        """0.4.2's unknown-tool result (its ``structuredContent`` unchanged, for peers that read it) plus
        one text item that names the tool and the available ones."""
        result = results.exception_result(
            f"Tool '{exposed_name}' not found in ExposedToolMapping", "ValueError"
        )
        names = sorted(self._registry())
        shown = ", ".join(names[:_LISTED_TOOLS]) if names else "none"
        if len(names) > _LISTED_TOOLS:
            shown += f", ... ({len(names) - _LISTED_TOOLS} more)"
        text = f"No tool named '{exposed_name}' on this Computer. Available tools: {shown}"
        result["content"] = [{"type": "text", "text": text, "annotations": None, "meta": None}]
        return result

    def cancel(self, req_id: str) -> bool:
        """Cancel an in-flight call by its request id; unknown ids are ignored (returns False)."""
        task = self._inflight.get(req_id)
        if task is None or task.done() or req_id in self._cancelled:
            return False
        self._cancelled.add(req_id)
        task.cancel()
        return True

    async def _confirm_and_run(
        self,
        entry: ExposedTool,
        params: dict[str, Any],
        timeout: float | None,  # noqa: ASYNC109
    ) -> ToolResult:
        auto = entry.config_meta is not None and entry.config_meta.auto_apply is True
        if not auto:
            if self.confirm is None:
                return _typed(
                    results.error_result(
                        f"Tool '{entry.name}' needs confirmation and this Computer has no confirmation "
                        "callback: set auto_apply: true in its tool_meta, or run smcp-computer with "
                        "--auto-apply"
                    )
                )
            try:
                approved = await self.confirm(entry.name, params)
            except TimeoutError:
                return _typed(results.error_result(f"Confirmation of tool '{entry.name}' timed out"))
            except Exception as exc:
                from smcp.computer._hygiene import public_reason

                reason = public_reason(exc, f"confirmation of tool '{entry.name}'")
                return _typed(results.error_result(f"Confirmation of tool '{entry.name}' failed: {reason}"))
            _tracing.event("smcp.confirmation", **{"smcp.approved": bool(approved)})
            if not approved:
                return _typed(results.error_result(CONFIRM_REJECTED_TEXT))
        return await self._execute(entry, params, timeout)

    async def _execute(
        self,
        entry: ExposedTool,
        params: dict[str, Any],
        timeout: float | None,  # noqa: ASYNC109
    ) -> ToolResult:
        host = entry.host
        try:
            async with asyncio.timeout(timeout):  # no extra task per call, unlike wait_for on 3.11
                result = await host.call_tool(entry.original, params)
        except TimeoutError:
            return _typed(results.timeout_result(f"Tool '{entry.original}' execution timed out"))
        except UpstreamAuthError as exc:
            return _typed(_auth_result(exc.status, host.bundle_id))
        except Exception as exc:
            from smcp.computer._hygiene import public_reason

            return _typed(results.error_result(f"调用异常: {public_reason(exc, f'tool {entry.original!r}')}"))
        wire = results.to_wire(result)
        if entry.config_meta is not None:
            meta = dict(wire.get("meta") or {})
            existing = meta.get(META_TOOL_META)
            merged = entry.config_meta.model_dump(mode="json")
            meta[META_TOOL_META] = {**existing, **merged} if isinstance(existing, dict) else merged
            wire["meta"] = meta
        if host.config.vrl:
            from smcp.computer._vrl import apply_vrl

            apply_vrl(wire, host.config.vrl, host.bundle_id, entry.original, params)
        return _typed(wire)

    # --- desktop, resources, skills, blobs ----------------------------------------------------

    async def refresh_skills(self) -> bool:
        """Rescan skills now; True (and a :attr:`Change.SKILLS`) when the set changed."""
        changed = await self._skills.refresh(self.active_servers())
        if changed:
            self._emit(Change.SKILLS)
        return changed

    async def get_desktop(self, size: int | None, window: str | None) -> list[str]:
        from smcp.computer._desktop import collect_desktop

        return await collect_desktop(
            self.active_servers(),
            self.recent_bundles(),
            size=size,
            window=window,
            request_timeout=self.request_timeout,
        )

    async def get_resources(self, mcp_server: str, cursor: str | None, req_id: str) -> dict[str, Any]:
        from smcp.computer._resources import get_resources_page

        host = self._hosts.get(mcp_server)
        source = host if host is not None and host.running else None
        return await asyncio.wait_for(
            get_resources_page(source, mcp_server, cursor, req_id), self.request_timeout
        )

    def list_skills(self) -> list[dict[str, Any]]:
        """``A2CSkillRef`` wire dicts of the active skills."""
        return self._skills.list_refs()

    async def get_skill(self, name: str, rel_path: str | None, req_id: str) -> dict[str, Any]:
        """The ``GetSkillRet`` wire dict (raises 4014/4016/4017)."""
        return await self._skills.get_skill(name, rel_path, req_id)

    async def get_blob(
        self, handle: str, chunk_offset: int | None, max_chunk_bytes: int | None, req_id: str
    ) -> dict[str, Any]:
        """The ``GetBlobRet`` wire dict of one chunk (raises 4018)."""
        return await self._blobs.get_chunk(handle, chunk_offset, max_chunk_bytes, req_id)

    async def put_blob(self, request: PutBlobReq | dict[str, Any]) -> dict[str, Any]:
        """Store one upload chunk; the ``PutBlobRet`` wire dict (raises 4019)."""
        return await self._uploads.put_chunk(request)


def _typed(result: dict[str, Any]) -> ToolResult:
    """A result dict from :mod:`smcp.core.results` (always in the wire shape) as a :class:`ToolResult`."""
    return result  # type: ignore[return-value]


def _auth_result(status: int, bundle_id: str) -> dict[str, Any]:
    if status == 403:
        code, action = ErrorCode.TOOL_AUTHORIZATION_FAILED, "token_refresh_required"
        message = f"MCP server {bundle_id} refused the credentials: refresh them and retry"
    else:
        code, action = ErrorCode.TOOL_AUTHORIZATION_REQUIRED, "user_authorization_required"
        message = f"MCP server {bundle_id} needs authorization: sign in and retry"
    hint = {"action": action, "message": message}
    structured = {"error_code": int(code), "mcp_server": bundle_id, "auth_hint": hint}
    return results.error_result(message, structured)
