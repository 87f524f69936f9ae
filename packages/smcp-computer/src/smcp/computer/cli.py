"""The ``smcp-computer`` command: ``run`` a Computer in an office, ``validate`` a config file.

``smcp-computer run --url URL --token TOKEN --office OFFICE --name NAME --config mcp.json`` connects,
starts the MCP servers, joins the office, prints ``READY`` on stdout and serves until SIGINT/SIGTERM.
A failure is one line ``error: <message>`` on stderr and exit status 1 (the convention of
``smcp-agent``). On a terminal it opens a REPL unless ``--no-repl`` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import logging
import signal
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smcp.computer._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from rich.console import Console

    from smcp.computer._computer import ConfirmCallback
    from smcp.computer._config import LoadedConfig
    from smcp.core.models import MCPServerConfig

__all__ = ["RunOptions", "app", "main"]

app = typer.Typer(
    name="smcp-computer",
    help="An A2C-SMCP Computer: hosts MCP servers and serves their tools to an office.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from smcp.computer._version import __version__

        print(f"smcp-computer {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """An A2C-SMCP Computer: hosts MCP servers and serves their tools to an office."""


def _console() -> Console:
    """Rich on stderr; off a terminal it never wraps (logs and pipes get whole lines)."""
    from rich.console import Console

    if sys.stderr.isatty():
        return Console(stderr=True, highlight=False)
    return Console(stderr=True, highlight=False, soft_wrap=True, width=1000)


def _problems_text(loaded: LoadedConfig) -> list[str]:
    from smcp.computer._inputs import placeholders_in
    from smcp.core.wire import to_wire

    out = [str(p) for p in loaded.errors]
    known = {spec.id for spec in loaded.inputs}
    for server in loaded.servers:
        missing = placeholders_in(to_wire(server.server_parameters)) - known
        for input_id in sorted(missing):
            out.append(f"servers.{server.name}: placeholder ${{input:{input_id}}} names no declared input")
    return out


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="mcp.json (JSON, or YAML with .yaml/.yml)")],
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON report on stdout")] = False,
) -> None:
    """Check a configuration file without starting anything (exit 0 when valid, 1 otherwise)."""
    from smcp.computer._config import bundle_id_of, load_config

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        if as_json:
            print(json.dumps({"ok": False, "problems": [str(exc)], "servers": [], "inputs": []}))
        else:
            _console().print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    problems = _problems_text(loaded)
    warnings = [str(p) for p in loaded.warnings]
    for declared in loaded.servers:
        problem, warning = _command_check(declared)
        problems += [problem] if problem else []
        warnings += [warning] if warning else []
    servers = [
        {"name": s.name, "bundle_id": bundle_id_of(s), "type": s.type, "disabled": s.disabled}
        for s in loaded.servers
    ]
    if as_json:
        report = {"ok": not problems, "problems": problems, "warnings": warnings, "servers": servers}
        report["inputs"] = [spec.id for spec in loaded.inputs]
        print(json.dumps(report))
    else:
        console = _console()
        for server in servers:
            flag = " (disabled)" if server["disabled"] else ""
            console.print(
                f"server {server['name']} -> bundle_id {server['bundle_id']} [{server['type']}]{flag}"
            )
        for text in problems:
            console.print(f"[red]problem:[/red] {text}")
        for text in warnings:  # the text already says "warning:"
            console.print(text, style="yellow", markup=False)
        console.print("[green]valid[/green]" if not problems else f"[red]{len(problems)} problem(s)[/red]")
    raise typer.Exit(0 if not problems else 1)


def _command_check(server: MCPServerConfig) -> tuple[str | None, str | None]:
    """(problem, warning) about a stdio server's command: not on PATH; a ``python`` that is not the
    interpreter running this command (an unactivated virtualenv runs another one)."""
    import os
    import shutil

    command = getattr(server.server_parameters, "command", None)
    if server.type != "stdio" or server.disabled or not command or "${" in command:
        return None, None
    found = shutil.which(command)
    if found is None:
        return f"servers.{server.name}: command {command!r} not found on PATH", None
    name = os.path.basename(command)
    same_env = os.path.dirname(os.path.abspath(found)) == os.path.dirname(os.path.abspath(sys.executable))
    if not same_env and sys.prefix == sys.base_prefix:  # no virtualenv: the same binary is the same
        same_env = os.path.realpath(found) == os.path.realpath(sys.executable)
    if name.startswith("python") and not same_env:
        return None, (
            f"warning: servers.{server.name}: {command!r} is {found}, not the interpreter running "
            f"smcp-computer ({sys.executable}); use that full path if the server needs this environment"
        )
    return None, None


def _confirm_callback(auto_apply: bool, interactive: bool) -> ConfirmCallback | None:
    if auto_apply:

        async def approve(_name: str, _params: dict[str, Any]) -> bool:
            return True

        return approve
    if not interactive:
        return None
    lock = asyncio.Lock()

    async def ask(name: str, params: dict[str, Any]) -> bool:
        from prompt_toolkit.application import in_terminal

        def prompt() -> bool:
            sys.stderr.write(f"\nRun tool {name} with {json.dumps(params, ensure_ascii=False)[:400]}? [y/N] ")
            sys.stderr.flush()
            return sys.stdin.readline().strip().lower() in ("y", "yes")

        async with lock, in_terminal():  # suspends the REPL prompt while the question is on screen
            return await asyncio.wait_for(asyncio.to_thread(prompt), 120.0)

    return ask


@dataclass(frozen=True)
class RunOptions:
    """The options of ``smcp-computer run``, declared once: the command's signature is built from
    these fields."""

    url: Annotated[
        str,
        typer.Option(
            envvar="SMCP_URL",
            help="SMCP server URL, e.g. http://127.0.0.1:8000; a path (http://host/sub) is where the "
            "server is mounted",
        ),
    ]
    office: Annotated[str, typer.Option(envvar="SMCP_OFFICE", help="office (room) to join")]
    name: Annotated[str, typer.Option(envvar="SMCP_NAME", help="this Computer's name in the office")]
    config: Annotated[
        list[Path] | None, typer.Option(help="mcp.json (JSON or YAML); repeat to merge several")
    ] = None
    token: Annotated[str | None, typer.Option(envvar="SMCP_TOKEN", help="token sent in auth.token")] = None
    auto_apply: Annotated[bool, typer.Option("--auto-apply", help="approve every tool call")] = False
    no_repl: Annotated[bool, typer.Option("--no-repl", help="no interactive REPL even on a terminal")] = False
    input_value: Annotated[
        list[str] | None, typer.Option("--input", help="ID=VALUE for an input; repeatable")
    ] = None
    socketio_path: Annotated[
        str, typer.Option(help="Engine.IO path on the server, after the URL's own path")
    ] = "socket.io"
    landing_root: Annotated[
        Path | None, typer.Option(help="directory where client:put_blob uploads land (off when unset)")
    ] = None
    skill_home: Annotated[Path | None, typer.Option(envvar="SMCP_SKILL_HOME", help="skill home")] = None
    skill_dir: Annotated[list[Path] | None, typer.Option(help="extra user skill directory")] = None
    spool_dir: Annotated[Path | None, typer.Option(help="blob spool directory")] = None
    max_restarts: Annotated[int, typer.Option(help="restart attempts for a failing MCP server")] = 5
    start_concurrency: Annotated[
        int | None, typer.Option(min=1, help="MCP servers started at the same time (default 4)")
    ] = None
    start_timeout: Annotated[
        float | None,
        typer.Option(help="seconds one MCP server may take to start before the others stop waiting for it"),
    ] = None
    require_all: Annotated[
        bool,
        typer.Option("--require-all", help="exit 1 instead of serving when an MCP server fails to start"),
    ] = False
    log_level: Annotated[str, typer.Option(help="logging level")] = "WARNING"
    log_format: Annotated[
        str, typer.Option(help="text, or json: one JSON object per line on stderr (with the request fields)")
    ] = "text"
    loop: Annotated[
        str,
        typer.Option(
            help="event loop: auto (uvloop when it is installed and not on a terminal, else asyncio), "
            "asyncio or uvloop"
        ),
    ] = "auto"

    def input_values(self) -> dict[str, str]:
        """``--input ID=VALUE`` as a mapping; :class:`typer.BadParameter` for a malformed one."""
        values: dict[str, str] = {}
        for item in self.input_value or ():
            key, sep, value = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"expects ID=VALUE, got {item!r}", param_hint="--input")
            values[key] = value
        return values


def run(**options: Any) -> None:
    """Start the MCP servers, join OFFICE as NAME and serve until SIGINT/SIGTERM."""
    from smcp.core import logjson
    from smcp.core._otelsetup import configure_from_env

    opts = RunOptions(**options)
    if opts.log_format not in ("text", "json"):
        raise typer.BadParameter(f"expects text or json, got {opts.log_format!r}", param_hint="--log-format")
    if opts.log_format == "json":
        logjson.install(opts.log_level)
    else:
        logging.basicConfig(
            level=opts.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    try:
        flush_traces = configure_from_env("smcp-computer")
    except RuntimeError as exc:
        raise typer.Exit(_fail(str(exc))) from None
    values = opts.input_values()
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    runner = _loop_runner(opts.loop, terminal=interactive)
    try:
        status = runner(_run(opts, values, interactive))
    finally:
        if flush_traces is not None:
            flush_traces()
    raise typer.Exit(status)


def _loop_runner(loop: str, terminal: bool = False) -> Callable[[Coroutine[Any, Any, int]], int]:
    """``asyncio.run`` or ``uvloop.run`` for ``--loop``; :class:`typer.BadParameter` otherwise.

    ``auto`` keeps asyncio on a ``terminal``: the REPL and the confirmation prompt hand the
    terminal between prompt_toolkit and a reader thread, which is tested on asyncio only.
    """
    if loop not in ("asyncio", "uvloop", "auto"):
        raise typer.BadParameter(f"expects asyncio, uvloop or auto, got {loop!r}", param_hint="--loop")
    if loop == "asyncio" or (loop == "auto" and terminal):
        return asyncio.run
    try:
        import uvloop
    except ImportError:
        if loop == "auto":
            return asyncio.run
        raise typer.BadParameter(
            "uvloop is not installed (pip install 'smcp-computer[fast]')", param_hint="--loop"
        ) from None
    run: Callable[[Coroutine[Any, Any, int]], int] = uvloop.run
    return run


def _command_signature(cls: type[RunOptions]) -> None:
    hints = typing.get_type_hints(cls, include_extras=True)
    params = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default,
            annotation=hints[f.name],
        )
        for f in dataclasses.fields(cls)
    ]
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {f.name: hints[f.name] for f in dataclasses.fields(cls)}


_command_signature(RunOptions)
app.command()(run)


def _auto_applies(server: MCPServerConfig) -> bool:
    """True when every call to this server's tools is approved by its config (no confirmation)."""
    default = server.default_tool_meta
    if server.disabled:
        return True
    if default is None or default.auto_apply is not True:
        return False
    return all(meta.auto_apply is not False for meta in server.tool_meta.values())


def _fail(message: str) -> int:
    """Print one failure line (``error: <message>`` on stderr, as ``smcp-agent`` does); status 1."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    return 1


async def _run(opts: RunOptions, values: dict[str, str], interactive: bool) -> int:
    from smcp.computer._computer import DEFAULT_START_CONCURRENCY, Computer
    from smcp.computer._config import merge_configs
    from smcp.computer._hosting import ServerState, Supervision
    from smcp.computer._inputs import InputResolver
    from smcp.computer._link import ComputerLink
    from smcp.computer._repl import print_config_problems
    from smcp.core.errors import SMCPException

    console = _console()
    configs = list(opts.config or ())
    try:
        loaded = merge_configs(configs)
    except ConfigError as exc:
        return _fail(str(exc))
    print_config_problems(loaded, console)
    if not configs:
        console.print("[yellow]warning:[/yellow] no --config given: this Computer hosts no MCP server")
    unknown = sorted(set(values) - {spec.id for spec in loaded.inputs})
    if unknown:
        known = ", ".join(sorted(spec.id for spec in loaded.inputs)) or "none"
        console.print(
            f"[yellow]warning:[/yellow] --input {', '.join(unknown)}: no input has this id "
            f"(declared inputs: {known})"
        )
    if not opts.auto_apply and not interactive and not all(_auto_applies(s) for s in loaded.servers):
        console.print(
            "[yellow]note:[/yellow] not on a terminal and no --auto-apply: tool calls without "
            "tool_meta auto_apply: true will be refused"
        )
    resolver = InputResolver(loaded.inputs, values=values, interactive=interactive)
    computer = Computer(
        opts.name,
        loaded.servers,
        confirm=_confirm_callback(opts.auto_apply, interactive),
        resolver=resolver,
        supervision=Supervision(max_attempts=opts.max_restarts),
        spool_dir=opts.spool_dir,
        skill_home=opts.skill_home,
        skill_dirs=list(opts.skill_dir or ()),
        landing_root=opts.landing_root,
        start_timeout=opts.start_timeout,
        start_concurrency=opts.start_concurrency or DEFAULT_START_CONCURRENCY,
    )
    link = ComputerLink(computer, opts.url, token=opts.token, socketio_path=opts.socketio_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-POSIX
            loop.add_signal_handler(sig, stop.set)
    try:
        try:  # connect first: a wrong URL, token or protocol version fails before any server starts
            await link.connect()
        except SMCPException as exc:
            return _fail(str(exc))
        with console.status(f"starting {len(computer.servers)} MCP server(s)..."):
            statuses = await computer.start()
        failed = []
        for status in statuses:
            if status.state is ServerState.RUNNING:
                console.print(f"[green]✓[/green] {status.bundle_id}: {status.tools} tool(s)")
            else:
                failed.append(status.bundle_id)
                console.print(f"[red]✗[/red] {status.bundle_id}: {status.state.value}: {status.last_error}")
        if failed and opts.require_all:
            return _fail(
                f"{len(failed)} MCP server(s) did not start ({', '.join(failed)}) and --require-all is set"
            )
        try:
            await link.join(opts.office)
        except (SMCPException, TimeoutError, OSError) as exc:
            return _fail(f"cannot join office {opts.office!r} at {opts.url}: {exc}")
        await computer.refresh_skills()
        console.print(f"joined office [bold]{opts.office}[/bold] as [bold]{opts.name}[/bold]")
        running = len(statuses) - len(failed)
        summary = f"READY {running}/{len(statuses)} MCP server(s) running"
        print(summary + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
        waiters: set[asyncio.Task[Any]] = {
            asyncio.create_task(stop.wait()),
            asyncio.create_task(link.wait_fatal()),
        }
        if interactive and not opts.no_repl:
            from smcp.computer._repl import run_repl

            waiters.add(asyncio.create_task(run_repl(computer, link, configs, console)))
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if link.fatal is not None:
            return _fail(str(link.fatal))
        return 0
    finally:
        try:
            await asyncio.wait_for(link.close(), 15.0)
        except Exception as exc:
            logging.getLogger("smcp.computer").warning("closing the link failed: %s", exc)
        await asyncio.wait_for(computer.close(), 30.0)


def main() -> None:
    """Console-script entry point."""
    from smcp.core._cli_help import plain_help

    plain_help(typer.main.get_command(app))()


if __name__ == "__main__":
    main()
