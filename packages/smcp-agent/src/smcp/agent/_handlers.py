"""Notification handlers: a class with optional methods and/or decorated functions."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smcp.core.errors import ConfigError
from smcp.core.events import NotifyEvent

logger = logging.getLogger("smcp.agent")

#: The notifications the server sends to an Agent: every ``notify:*`` event except
#: ``notify:tool_call_cancel``, which goes to Computers only.
AGENT_NOTIFICATIONS: tuple[NotifyEvent, ...] = tuple(
    e for e in NotifyEvent if e is not NotifyEvent.TOOL_CALL_CANCEL
)


def notify_kind(event: NotifyEvent) -> str:
    """A notification's handler name: the event without ``notify:`` (``"update_tool_list"``)."""
    return event.value.removeprefix("notify:")


#: Handler names of the notifications, in :class:`NotifyEvent` order.
NOTIFY_KINDS: tuple[str, ...] = tuple(notify_kind(e) for e in AGENT_NOTIFICATIONS)
#: Agent-side events a handler can subscribe to besides the notifications.
AGENT_EVENTS: tuple[str, ...] = ("cache_updated", "connected", "disconnected", "reconnected")
#: Everything a handler can subscribe to.
EVENT_KINDS: frozenset[str] = frozenset(NOTIFY_KINDS + AGENT_EVENTS)


@dataclass(frozen=True, slots=True)
class Notification:
    """One ``notify:*`` event as it arrived. ``kind`` is the event name without ``notify:``."""

    kind: str
    computer: str | None = None
    agent: str | None = None
    office_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class AgentHandler:
    """Subclass and define any of these methods (sync or async); all are optional.

    - ``on_enter_office(note)``, ``on_leave_office(note)``, ``on_update_config(note)``,
      ``on_update_tool_list(note)``, ``on_update_desktop(note)``, ``on_update_skills(note)``:
      a :class:`Notification`;
    - ``on_cache_updated(computer, view)``: the cached view of a Computer was refreshed
      (``view`` is ``None`` when the Computer left);
    - ``on_connected()``, ``on_disconnected()``, ``on_reconnected()``: connection state.

    Exceptions raised by a handler are logged and never reach the Agent.
    """


Callback = Callable[..., Any]


class Dispatcher:
    """Calls every registered handler of an event kind, isolating their failures."""

    def __init__(self) -> None:
        self._objects: list[object] = []
        self._functions: dict[str, list[Callback]] = {}

    def add(self, handler: object) -> None:
        self._objects.append(handler)

    def on(self, kind: str, fn: Callback) -> None:
        if kind not in EVENT_KINDS:
            raise ConfigError(f"unknown event {kind!r}; use one of {sorted(EVENT_KINDS)}")
        self._functions.setdefault(kind, []).append(fn)

    def has(self, kind: str) -> bool:
        return bool(self._functions.get(kind)) or any(
            callable(getattr(obj, f"on_{kind}", None)) for obj in self._objects
        )

    async def emit(self, kind: str, *args: Any) -> None:
        targets: list[Callback] = list(self._functions.get(kind, ()))
        for obj in self._objects:
            method = getattr(obj, f"on_{kind}", None)
            if callable(method):
                targets.append(method)
        for fn in targets:
            try:
                ret = fn(*args)
                if inspect.isawaitable(ret):
                    await ret
            except Exception:
                logger.exception("handler %r for %s raised; ignored", fn, kind)
