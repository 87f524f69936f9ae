"""The log of python-engineio's client as the roles pass it on: errors only, without the benign one.

python-engineio's client logs ``ERROR packet queue is empty, aborting`` when its writer saw nothing to
send for the whole heartbeat window, i.e. whenever the server fell silent (a silent network drop,
a sleeping laptop). That is a lost connection, which the roles report themselves (a WARNING, then
the reconnect); an ERROR line there would cry wolf on every normal reconnect. Every other engineio
error still passes.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["BENIGN_ENGINEIO_ERRORS", "EngineIOLog"]

#: engineio client messages logged at ERROR that only mean "the connection was lost".
BENIGN_ENGINEIO_ERRORS = ("packet queue is empty, aborting",)


class EngineIOLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``engineio_logger=`` for a python-socketio client: passes on errors (as engineio's default
    does), logs the benign ones at DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("engineio.client"), {})

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.ERROR and isinstance(msg, str) and msg.startswith(BENIGN_ENGINEIO_ERRORS):
            level = logging.DEBUG
        elif level < logging.ERROR:
            return
        self.logger.log(level, msg, *args, **kwargs)
