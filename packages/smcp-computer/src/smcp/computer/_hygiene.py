"""What an Agent is told about an unexpected failure: a stable text; the detail goes to the log.

An exception of our own tree (:class:`~smcp.core.errors.SMCPException`) carries a message written
for the Agent. Anything else (a library's or the OS's exception) may hold paths, hostnames or
secret values, so its text and traceback stay in the Computer's log.
"""

from __future__ import annotations

import logging

from smcp.core.errors import SMCPException

__all__ = ["public_reason"]

logger = logging.getLogger("smcp.computer")


def public_reason(exc: BaseException, what: str) -> str:
    """The text to send for ``exc`` raised while doing ``what`` (logs a foreign one's detail)."""
    if isinstance(exc, SMCPException):
        return str(getattr(exc, "message", None) or exc)
    logger.warning("%s failed", what, exc_info=exc)
    return f"{what} failed on the Computer ({type(exc).__name__}); the detail is in the Computer's log"
