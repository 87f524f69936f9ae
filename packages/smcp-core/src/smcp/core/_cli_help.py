"""Help text without type labels for the roles' typer commands (``<str>``, ``<bool>``, ``{config}``).

Works on the click command typer builds, by attributes only, so that core needs neither typer nor
click: positional arguments show their name in capitals (``CONFIG``), flags show nothing, other
options their metavar (or their name in capitals).
"""

from __future__ import annotations

from typing import Any

__all__ = ["plain_help"]


def _no_label(ctx: Any) -> None:
    return None


def _plain(param: Any) -> None:
    name = (param.name or "value").upper()
    if getattr(param, "param_type_name", "") == "argument":
        label = param.metavar or name
        param.metavar = label
        param.display_type_rich = _no_label  # typer labels arguments by type, ignoring metavar
        param.make_metavar = lambda *_: label  # and writes {name} in the usage line
    elif getattr(param, "is_flag", False) or getattr(param, "count", False):
        param.metavar = ""
    elif param.metavar is None:
        param.metavar = name


def plain_help(command: Any) -> Any:
    """``command`` (and its subcommands) with plain help labels; returns ``command``."""
    for param in getattr(command, "params", ()):
        _plain(param)
    make_help = getattr(command, "get_help_option", None)
    if make_help is not None:

        def help_option(ctx: Any, _make: Any = make_help) -> Any:
            option = _make(ctx)
            if option is not None:
                _plain(option)
            return option

        command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command
