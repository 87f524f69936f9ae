"""The Agent's cache of every Computer's tools, config and skills, kept fresh by notifications."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from smcp.core.events import NotifyEvent

if TYPE_CHECKING:
    from smcp.core.models import A2CSkillRef, GetComputerConfigRet, SMCPTool

logger = logging.getLogger("smcp.agent")

CacheKind = Literal["tools", "config", "skills"]
ALL_KINDS: tuple[CacheKind, ...] = ("tools", "config", "skills")

#: What a notification naming a Computer does to the cache: refresh these kinds (of those the
#: Agent caches) or, for ``None``, forget the Computer. A config change usually changes the tool
#: list too, so it refreshes both. Notifications not listed leave the cache alone.
NOTIFY_ROUTES: Mapping[NotifyEvent, tuple[CacheKind, ...] | None] = MappingProxyType(
    {
        NotifyEvent.ENTER_OFFICE: ALL_KINDS,
        NotifyEvent.LEAVE_OFFICE: None,
        NotifyEvent.UPDATE_CONFIG: ("config", "tools"),
        NotifyEvent.UPDATE_TOOL_LIST: ("tools",),
        NotifyEvent.UPDATE_SKILLS: ("skills",),
    }
)


@dataclass(slots=True)
class ComputerView:
    """What the Agent last learned about one Computer. ``None`` means not fetched (yet)."""

    name: str
    tools: list[SMCPTool] | None = None
    config: GetComputerConfigRet | None = None
    skills: list[A2CSkillRef] | None = None
    #: ``time.time()`` of the last completed refresh round.
    refreshed_at: float | None = None
    #: Number of refresh rounds run for this Computer (bursts of notifications share one round).
    rounds: int = 0
    #: Last failure per kind (message only), cleared by the next success.
    errors: dict[str, str] = field(default_factory=dict)


Fetcher = Callable[[str, CacheKind], Awaitable[Any]]
Listener = Callable[[str, "ComputerView | None"], Awaitable[None]]


class ComputerCache:
    """Read-only view for users (``agent.cache``); the Agent drives the refreshes.

    Reading never makes a round trip. Refresh requests for one Computer that arrive while a
    round is pending or running are merged into the next round (coalescing bursts).
    """

    def __init__(self, fetch: Fetcher, listener: Listener, *, debounce: float = 0.05) -> None:
        self._fetch = fetch
        self._listener = listener
        self._debounce = debounce
        self._views: dict[str, ComputerView] = {}
        self._pending: dict[str, set[CacheKind]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    # -- reading -------------------------------------------------------------------------

    def __contains__(self, computer: object) -> bool:
        return computer in self._views

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._views))

    def __len__(self) -> int:
        return len(self._views)

    def get(self, computer: str) -> ComputerView | None:
        return self._views.get(computer)

    def computers(self) -> list[str]:
        """Names of the Computers known to be in the office."""
        return list(self._views)

    def tools(self, computer: str | None = None) -> list[tuple[str, SMCPTool]]:
        """``(computer, tool)`` pairs from the cache, for one Computer or all."""
        out: list[tuple[str, SMCPTool]] = []
        for name, view in list(self._views.items()):
            if computer is not None and name != computer:
                continue
            out.extend((name, tool) for tool in view.tools or ())
        return out

    async def wait_idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until no refresh is pending or running; raises ``TimeoutError``."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    # -- driven by the Agent --------------------------------------------------------------

    def store(self, computer: str, kind: CacheKind, value: Any) -> None:
        view = self._views.get(computer)
        if view is None:
            view = self._views[computer] = ComputerView(computer)
        setattr(view, kind, value)
        view.errors.pop(kind, None)

    def ensure(self, computer: str) -> ComputerView:
        view = self._views.get(computer)
        if view is None:
            view = self._views[computer] = ComputerView(computer)
        return view

    async def route(self, event: NotifyEvent, computer: str, wanted: tuple[CacheKind, ...]) -> None:
        """Apply :data:`NOTIFY_ROUTES` for a notification ``event`` about ``computer``."""
        if event not in NOTIFY_ROUTES:
            return
        route = NOTIFY_ROUTES[event]
        if route is None:
            await self.drop(computer)
            return
        self.ensure(computer)  # a Computer that notifies is in the office
        kinds = tuple(k for k in route if k in wanted)
        if kinds:
            self.request(computer, kinds)

    def request(self, computer: str, kinds: tuple[CacheKind, ...] = ALL_KINDS) -> None:
        """Schedule a refresh of ``kinds`` for ``computer`` (merged with any pending one)."""
        self.ensure(computer)
        self._pending.setdefault(computer, set()).update(kinds)
        worker = self._workers.get(computer)
        if worker is None or worker.done():
            self._idle.clear()
            self._workers[computer] = asyncio.get_running_loop().create_task(self._run(computer))

    async def drop(self, computer: str) -> None:
        self._pending.pop(computer, None)
        worker = self._workers.pop(computer, None)
        if worker is not None and not worker.done():
            worker.cancel()
        self._update_idle()
        if self._views.pop(computer, None) is not None:
            await self._listener(computer, None)

    async def retain_only(self, computers: set[str]) -> None:
        for name in list(self._views):
            if name not in computers:
                await self.drop(name)

    async def clear(self) -> None:
        for worker in self._workers.values():
            worker.cancel()
        self._workers.clear()
        self._pending.clear()
        self._views.clear()
        self._idle.set()

    def _update_idle(self) -> None:
        if all(w.done() for w in self._workers.values()) and not self._pending:
            self._idle.set()

    async def _run(self, computer: str) -> None:
        try:
            while self._pending.get(computer):
                await asyncio.sleep(self._debounce)
                kinds = self._pending.pop(computer, set())
                if not kinds:
                    break
                # config before tools: a config change usually changes the tool list too
                ordered = [k for k in ALL_KINDS if k in kinds]
                results = await asyncio.gather(
                    *(self._fetch(computer, k) for k in ordered), return_exceptions=True
                )
                view = self._views.get(computer)
                if view is None:
                    return
                for kind, result in zip(ordered, results, strict=True):
                    if isinstance(result, asyncio.CancelledError):
                        raise result
                    if isinstance(result, BaseException):
                        view.errors[kind] = str(result)
                        logger.warning("refreshing %s of computer %r failed: %s", kind, computer, result)
                    else:
                        setattr(view, kind, result)
                        view.errors.pop(kind, None)
                view.rounds += 1
                view.refreshed_at = time.time()
                await self._listener(computer, view)
        finally:
            if self._workers.get(computer) is asyncio.current_task():
                del self._workers[computer]
            if self._pending.get(computer) and computer in self._views:
                self._workers[computer] = asyncio.get_running_loop().create_task(self._run(computer))
            self._update_idle()
