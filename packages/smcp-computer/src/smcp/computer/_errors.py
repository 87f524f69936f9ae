"""The Computer's own errors: one base, :class:`ComputerError`, under core's :class:`LocalError`.

Each keeps the builtin base it had before (``ValueError``, ``ImportError``, ...) as a second base,
so code that caught those still works.
"""

from __future__ import annotations

from smcp.core.errors import ConfigError as CoreConfigError
from smcp.core.errors import JoinRefusedError, LocalError

__all__ = ["ComputerError", "ConfigError", "EnvFileError", "InputError", "JoinError", "VrlUnavailableError"]


class ComputerError(LocalError):
    """Base class of the errors the Computer raises on its own side."""


class ConfigError(ComputerError, CoreConfigError):
    """A configuration file cannot be read or is not JSON/YAML at all."""


class InputError(ComputerError):
    """An input has no value and none can be obtained; the message says how to provide one."""


class EnvFileError(ComputerError):
    """The env file of a server cannot be read; the message names the file."""


class VrlUnavailableError(ComputerError, ImportError):
    """``vrl-python`` is not installed."""


#: Deprecated alias: the server refused ``server:join_office`` (core's :class:`JoinRefusedError`).
JoinError = JoinRefusedError
