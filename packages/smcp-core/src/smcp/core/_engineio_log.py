"""The log of python-engineio as the roles pass it on: errors only, without the benign ones.

python-engineio's client logs ``ERROR packet queue is empty, aborting`` when its writer saw nothing to
send for the whole heartbeat window, i.e. whenever the server fell silent (a silent network drop,
a sleeping laptop). That is a lost connection, which the roles report themselves (a WARNING, then
the reconnect). Its server logs ``ERROR Invalid session <sid>`` when a polling client of the
server's previous run comes back after a restart; the client then reconnects. An ERROR line for
either would cry wolf on every normal reconnect. Every other engineio error still passes.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["BENIGN_ENGINEIO_ERRORS", "EngineIOLog"]

#: engineio messages logged at ERROR that only mean "the connection was lost" (client) or "a client
#: of the previous run reconnects" (server).
BENIGN_ENGINEIO_ERRORS = ("packet queue is empty, aborting", "Invalid session ")


class EngineIOLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``engineio_logger=`` for python-socketio: passes on errors (as engineio's default does),
    logs the benign ones at DEBUG. ``side`` is ``"client"`` or ``"server"``."""

    def __init__(self, side: str = "client") -> None:
        super().__init__(logging.getLogger(f"engineio.{side}"), {})

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.ERROR and isinstance(msg, str) and msg.startswith(BENIGN_ENGINEIO_ERRORS):
            level = logging.DEBUG
        elif level < logging.ERROR:
            return
        self.logger.log(level, msg, *args, **kwargs)
