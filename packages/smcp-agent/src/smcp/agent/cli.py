"""The ``smcp-agent`` command: query and call the Computers of an office from a shell.

    smcp-agent --url http://127.0.0.1:8000 --token T --office o1 computers
    smcp-agent ... tools c1
    smcp-agent ... call c1 toolbox__echo --params '{"text": "hi"}' --timeout 10
    smcp-agent ... --json config c1
    smcp-agent ... watch            # notifications as they arrive
    smcp-agent ... repl             # interactive, with completion of computer and tool names

Exit status: 0 on success, 1 when the request failed (one line on stderr), 2 for usage errors
(also one line on stderr). Every connection option can come from the environment: ``SMCP_URL``,
``SMCP_OFFICE``, ``SMCP_TOKEN``, ``SMCP_NAME``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from smcp.agent._options import DEFAULT_REQUEST_TIMEOUT

if TYPE_CHECKING:
    from rich.console import Console

    from smcp.agent._client import AsyncAgent
    from smcp.core.errors import JoinRefusedError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="A2C-SMCP Agent command line."
)


class UsageFault(Exception):
    """A usage error found after parsing (missing connection option, bad value): exit status 2."""


@dataclass
class Options:
    url: str
    token: str | None
    office: str
    name: str
    as_json: bool
    transports: tuple[str, ...]
    request_timeout: float
    socketio_path: str | None = None


def _plain(value: Any) -> Any:
    """Models, MCP results and containers as JSON data."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(_plain(value), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def server_location(url: str, socketio_path: str | None) -> tuple[str, str]:
    """The server URL without its path, and the Socket.IO path: a path in ``url`` (a server mounted
    under a sub-path, e.g. ``http://host/smcp``) is the prefix of ``socket.io``; ``--socketio-path``
    gives the whole path instead."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    if socketio_path is not None:
        if prefix:
            raise UsageFault(
                f"--url has a path ({parts.path!r}) and --socketio-path is given: "
                "give the sub-path in one of them only"
            )
        return url, socketio_path.strip("/")
    base = urlunsplit((parts.scheme, parts.netloc, "", parts.query, parts.fragment))
    return base, f"{prefix}/socket.io" if prefix else "socket.io"


def _agent(opts: Options, *, cache: bool) -> AsyncAgent:
    from smcp.agent._client import AsyncAgent

    url, socketio_path = server_location(opts.url, opts.socketio_path)
    return AsyncAgent(
        url,
        socketio_path=socketio_path,
        token=opts.token,
        office=opts.office,
        name=opts.name,
        transports=opts.transports,
        request_timeout=opts.request_timeout,
        cache=cache,
    )


def _run(
    ctx: typer.Context, work: Callable[[AsyncAgent, Options], Awaitable[int]], *, cache: bool = False
) -> None:
    from smcp.core.errors import JoinRefusedError, SMCPException

    opts: Options = ctx.obj
    if not opts.url:
        raise UsageFault("--url is required (or set SMCP_URL)")
    if not opts.office:
        raise UsageFault("--office is required (or set SMCP_OFFICE)")
    if not opts.request_timeout > 0:
        raise UsageFault(
            f"--request-timeout must be a positive number of seconds, got {opts.request_timeout}"
        )

    async def main() -> int:
        async with _agent(opts, cache=cache) as agent:
            return await work(agent, opts)

    from smcp.core._otelsetup import configure_from_env

    try:
        flush_traces = configure_from_env("smcp-agent")
    except RuntimeError as exc:
        _fail(str(exc))
        raise typer.Exit(1) from None
    try:
        code = asyncio.run(main())
    except JoinRefusedError as exc:
        _fail(f"{exc}; {_join_hint(exc)}")
        raise typer.Exit(1) from None
    except SMCPException as exc:
        _fail(str(exc) or type(exc).__name__)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        if flush_traces is not None:
            flush_traces()
    raise typer.Exit(code)


def _join_hint(exc: JoinRefusedError) -> str:
    """What to do about a refused join, from the server's reason."""
    reason = exc.reason.lower()
    if "already has an agent" in reason or "allowed" in reason:
        return (
            "wait for the other Agent to leave the office, or start the server with a higher "
            "--max-agents-per-office"
        )
    if "taken" in reason or "exists" in reason:
        return "choose another --name (or SMCP_NAME), or wait for the other Agent to leave"
    return (
        "if another Agent holds the office or the name: use another --name, raise the server's "
        "--max-agents-per-office, or wait for the other Agent to leave"
    )


def _default_name() -> str:
    """A fresh name per command, so that commands in one office do not refuse each other."""
    import secrets

    return f"smcp-agent-{secrets.token_hex(3)}"


def _show_version(value: bool) -> None:
    if value:
        from smcp.agent._version import __version__

        sys.stdout.write(f"smcp-agent {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def main_options(  # noqa: PLR0917 - typer maps parameters to options
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Server URL, e.g. http://127.0.0.1:8000", envvar="SMCP_URL"),
    ] = None,
    office: Annotated[
        str | None, typer.Option(metavar="OFFICE", help="Office to join", envvar="SMCP_OFFICE")
    ] = None,
    token: Annotated[str | None, typer.Option(metavar="TOKEN", help="Token", envvar="SMCP_TOKEN")] = None,
    name: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="This Agent's name in the office [default: smcp-agent-<random>]",
            envvar="SMCP_NAME",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
    polling: Annotated[bool, typer.Option("--polling", help="Connect with HTTP long-polling first")] = False,
    request_timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds to wait for each answer")
    ] = DEFAULT_REQUEST_TIMEOUT,
    socketio_path: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="The server's Socket.IO path [default: the --url path + /socket.io, or socket.io]",
            envvar="SMCP_SOCKETIO_PATH",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version and exit"),
    ] = False,
    log_format: Annotated[
        str,
        typer.Option(metavar="FORMAT", help="text, or json: one JSON object per line on stderr"),
    ] = "text",
    log_level: Annotated[str, typer.Option(metavar="LEVEL", help="Logging level")] = "WARNING",
) -> None:
    """Connect to URL, join OFFICE and run one command."""
    import logging

    from smcp.core import logjson

    if log_format not in ("text", "json"):
        raise typer.BadParameter(f"expects text or json, got {log_format!r}", param_hint="--log-format")
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise typer.BadParameter(
            f"expects debug, info, warning or error, got {log_level!r}", param_hint="--log-level"
        )
    if log_format == "json":
        logjson.install(log_level)
    elif log_level.upper() != "WARNING":  # by default Python's own last-resort handler prints warnings
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    transports = ("polling", "websocket") if polling else ("websocket",)
    ctx.obj = Options(
        url or "",
        token,
        office or "",
        name or _default_name(),
        as_json,
        transports,
        request_timeout,
        socketio_path,
    )


def _console() -> Console:
    """Rich's console on stdout; off a terminal it does not wrap at 80 columns."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=1_000_000, soft_wrap=True)


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    _console().print(table)


def _print_result(result: Any) -> None:
    console = _console()
    for item in result.content:
        text = getattr(item, "text", None)
        if isinstance(text, str):
            console.print(text, markup=False, highlight=False)
        else:
            console.print(f"[{item.type} content]", markup=False)
    if result.structured_content is not None and not result.content:
        console.print(json.dumps(result.structured_content, ensure_ascii=False), markup=False)
    if result.is_error:
        console.print("(tool reported an error)", style="red")


@app.command()
def computers(ctx: typer.Context) -> None:
    """List the Computers of the office."""

    async def work(agent: AsyncAgent, opts: Options) -> int:
        found = await agent.computers()
        if opts.as_json:
            _emit_json(found)
        else:
            _table("Computers", ["name", "version"], [[c.name, c.a2c_version or ""] for c in found])
        return 0

    _run(ctx, work)


@app.command()
def tools(ctx: typer.Context, computer: str) -> None:
    """List the tools of COMPUTER."""

    async def work(agent: AsyncAgent, opts: Options) -> int:
        found = await agent.get_tools(computer)
        if opts.as_json:
            _emit_json(found)
        else:
            _table(f"Tools of {computer}", ["name", "description"], [[t.name, t.description] for t in found])
        return 0

    _run(ctx, work)


@app.command()
def call(
    ctx: typer.Context,
    computer: str,
    tool: str,
    params: Annotated[str, typer.Option(metavar="JSON", help="Tool arguments as a JSON object")] = "{}",
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Tool call timeout in seconds")] = 60.0,
) -> None:
    """Call TOOL on COMPUTER; exit status 1 if the tool reports an error."""
    if not timeout > 0:
        raise UsageFault(f"--timeout must be a positive number of seconds, got {timeout}")
    try:
        arguments = json.loads(params)
    except ValueError as exc:
        _fail(f"--params is not valid JSON: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(arguments, dict):
        _fail('--params must be a JSON object, e.g. \'{"text": "hi"}\'')
        raise typer.Exit(2)

    async def work(agent: AsyncAgent, opts: Options) -> int:
        result = await agent.call_tool(computer, tool, arguments, timeout)
        if opts.as_json:
            from smcp.core.results import to_wire

            _emit_json(to_wire(result))
        else:
            _print_result(result)
        if result.is_error:
            from smcp.agent.llm import result_text

            summary = " ".join(result_text(result).split())[:200]
            _fail(f"tool {tool} on {computer} reported an error: {summary}")
            return 1
        return 0

    _run(ctx, work)


@app.command()
def config(ctx: typer.Context, computer: str) -> None:
    """Show the MCP server configuration of COMPUTER."""

    async def work(agent: AsyncAgent, opts: Options) -> int:
        found = await agent.get_config(computer)
        if opts.as_json:
            _emit_json(found)
        else:
            rows = [
                [bundle, cfg.name, cfg.type, "yes" if cfg.disabled else ""]
                for bundle, cfg in found.servers.items()
            ]
            _table(f"MCP servers of {computer}", ["bundle_id", "name", "type", "disabled"], rows)
        return 0

    _run(ctx, work)


@app.command()
def desktop(
    ctx: typer.Context,
    computer: str,
    size: Annotated[int | None, typer.Option(metavar="N", help="At most this many windows")] = None,
    window: Annotated[str | None, typer.Option(metavar="URI", help="Only this window:// URI")] = None,
) -> None:
    """Show the desktop (rendered windows) of COMPUTER."""

    async def work(agent: AsyncAgent, opts: Options) -> int:
        found = await agent.get_desktop(computer, size, window)
        if opts.as_json:
            _emit_json(found)
        else:
            sys.stdout.write("\n\n".join(found) + ("\n" if found else ""))
        return 0

    _run(ctx, work)


@app.command()
def resources(ctx: typer.Context, computer: str, server: str) -> None:
    """List every resource of MCP server SERVER (a bundle id) on COMPUTER."""

    async def work(agent: AsyncAgent, opts: Options) -> int:
        found = [r async for r in agent.iter_resources(computer, server)]
        if opts.as_json:
            _emit_json(found)
        else:
            _table(
                f"Resources of {server}",
                ["uri", "name", "mime"],
                [[r.uri, r.name, r.mime_type or ""] for r in found],
            )
        return 0

    _run(ctx, work)


@app.command()
def skills(ctx: typer.Context, computer: str) -> None:
    """List the skills of COMPUTER."""

    async def work(agent: AsyncAgent, opts: Options) -> int:
        found = await agent.get_skills(computer)
        if opts.as_json:
            _emit_json(found)
        else:
            _table(
                f"Skills of {computer}",
                ["name", "source", "description"],
                [[s.name, s.source, s.description] for s in found],
            )
        return 0

    _run(ctx, work)


@app.command()
def watch(
    ctx: typer.Context,
    duration: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Stop after this many seconds")
    ] = None,
) -> None:
    """Print notifications as they arrive (one line each; JSON lines with --json) until Ctrl-C."""
    if duration is not None and not duration > 0:
        raise UsageFault(f"--duration must be a positive number of seconds, got {duration}")

    async def work(agent: AsyncAgent, opts: Options) -> int:
        from smcp.agent._handlers import AGENT_NOTIFICATIONS, Notification, notify_kind

        def show(note: Notification) -> None:
            if opts.as_json:
                _emit_json({"event": f"notify:{note.kind}", "data": note.data})
            else:
                who = note.computer or note.agent or ""
                sys.stdout.write(f"{note.kind} {who}\n")
                sys.stdout.flush()

        for event in AGENT_NOTIFICATIONS:
            agent.on(notify_kind(event))(show)
        if not opts.as_json:
            sys.stdout.write(f"watching office {opts.office} (Ctrl-C to stop)\n")
            sys.stdout.flush()
        else:
            _emit_json({"event": "watching", "data": {"office_id": opts.office}})
        stop = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
        return 0

    _run(ctx, work)


REPL_COMMANDS = ["computers", "tools", "call", "config", "desktop", "resources", "skills", "help", "quit"]
REPL_HELP = """commands:
  computers                         list the Computers of the office
  tools COMPUTER                    list tools
  call COMPUTER TOOL [JSON]         call a tool; the rest of the line is a JSON object of arguments
  config COMPUTER | skills COMPUTER
  desktop COMPUTER [SIZE]           rendered windows
  resources COMPUTER SERVER         every resource of one MCP server
  help | quit"""


def repl_completions(agent: AsyncAgent, words: list[str], current: str) -> list[str]:
    """Candidates for the word being typed, from the command list and the Agent's cache."""
    position = len(words)
    if position == 0:
        options = REPL_COMMANDS
    elif position == 1 and words[0] in {"tools", "call", "config", "desktop", "resources", "skills"}:
        options = agent.cache.computers()
    elif position == 2 and words[0] == "call":
        options = [t.name for _, t in agent.cache.tools(words[1])]
    elif position == 2 and words[0] == "resources":
        view = agent.cache.get(words[1])
        options = list(view.config.servers) if view is not None and view.config is not None else []
    else:
        options = []
    return [o for o in options if o.startswith(current)]


def split_repl_line(line: str) -> tuple[list[str], str | None]:
    """The words of a REPL line, and for ``call COMPUTER TOOL ...`` the rest of the line (the JSON
    arguments, unsplit; one pair of shell quotes around it is allowed)."""
    parts = line.split(None, 3)
    if parts and parts[0] == "call":
        rest = parts[3].strip() if len(parts) == 4 else None
        if rest and rest[0] in "'\"":
            with contextlib.suppress(ValueError):
                words = shlex.split(rest)
                if len(words) == 1:
                    rest = words[0]
        return parts[:3], rest
    return shlex.split(line), None


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError('the arguments must be a JSON object, e.g. {"text": "hi"}')
    return value


async def _repl_line(agent: AsyncAgent, line: str) -> tuple[bool, bool]:
    """Run one REPL line: (go on, the command succeeded)."""
    from smcp.core.errors import SMCPException

    try:
        words, rest = split_repl_line(line)
    except ValueError as exc:
        _fail(str(exc))
        return True, False
    if not words:
        return True, True
    command, args = words[0], words[1:]
    ok = True
    try:
        if command in ("quit", "exit"):
            return False, True
        if command == "help":
            sys.stdout.write(REPL_HELP + "\n")
        elif command == "computers":
            for c in await agent.computers():
                sys.stdout.write(c.name + "\n")
        elif command == "tools" and len(args) == 1:
            for t in await agent.get_tools(args[0]):
                sys.stdout.write(f"{t.name}  {t.description}\n")
        elif command == "call" and len(args) == 2:
            arguments = _json_object(rest) if rest else {}
            result = await agent.call_tool(args[0], args[1], arguments)
            _print_result(result)
            ok = not result.is_error
        elif command == "config" and len(args) == 1:
            _emit_json(await agent.get_config(args[0]))
        elif command == "skills" and len(args) == 1:
            for s in await agent.get_skills(args[0]):
                sys.stdout.write(f"{s.name}  {s.description}\n")
        elif command == "desktop" and len(args) in (1, 2):
            size = int(args[1]) if len(args) == 2 else None
            sys.stdout.write("\n\n".join(await agent.get_desktop(args[0], size)) + "\n")
        elif command == "resources" and len(args) == 2:
            async for r in agent.iter_resources(args[0], args[1]):
                sys.stdout.write(f"{r.uri}  {r.name}\n")
        else:
            _fail(f"unknown command or wrong arguments: {line.strip()!r}; type help")
            ok = False
    except SMCPException as exc:
        _fail(str(exc))
        ok = False
    except ValueError as exc:  # the line's own JSON arguments or SIZE: a usage error
        _fail(f"bad arguments: {exc}")
        ok = False
    sys.stdout.flush()
    return True, ok


async def _interruptible(line: Coroutine[Any, Any, tuple[bool, bool]]) -> bool:
    """Run one REPL line; Ctrl-C (SIGINT) cancels it and the REPL goes on. ``False`` means quit."""
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(line)
    previous = signal.getsignal(signal.SIGINT)
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        go_on, _ = await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        _fail("cancelled")
        return True
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return go_on


@app.command()
def repl(ctx: typer.Context) -> None:
    """Interactive shell with completion of commands, Computer names and tool names."""

    async def work(agent: AsyncAgent, opts: Options) -> int:
        if not sys.stdin.isatty():
            # scripted use: one command per line from stdin; exit status 1 if any of them failed
            failed = False
            for line in sys.stdin:
                go_on, ok = await _repl_line(agent, line)
                failed = failed or not ok
                if not go_on:
                    break
            return 1 if failed else 0
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import Completer, Completion

        class AgentCompleter(Completer):
            def get_completions(self, document: Any, complete_event: Any) -> Any:
                text = document.text_before_cursor
                words = text.split()
                current = "" if text.endswith(" ") or not words else words.pop()
                for option in repl_completions(agent, words, current):
                    yield Completion(option, start_position=-len(current))

        session: Any = PromptSession(completer=AgentCompleter())
        sys.stdout.write(f"connected to {opts.url}, office {opts.office}; type help\n")
        while True:
            try:
                line = await session.prompt_async("smcp> ")
            except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line
                continue
            except EOFError:  # Ctrl-D
                return 0
            if not await _interruptible(_repl_line(agent, line)):
                return 0

    _run(ctx, work, cache=True)


@app.command("mcp")
def mcp_server(  # noqa: PLR0917 - typer maps parameters to options
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(metavar="URL", help="Server URL (overrides the global --url)")
    ] = None,
    office: Annotated[str | None, typer.Option(metavar="OFFICE", help="Office to serve")] = None,
    token: Annotated[str | None, typer.Option(metavar="TOKEN", help="Token for the SMCP server")] = None,
    computer: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="Only this Computer's tools (repeatable)")
    ] = None,
    http: Annotated[
        str | None, typer.Option(metavar="HOST:PORT", help="Serve streamable HTTP at /mcp instead of stdio")
    ] = None,
    http_token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN", help="Bearer token MCP clients must send over HTTP", envvar="SMCP_MCP_TOKEN"
        ),
    ] = None,
    call_timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Deadline of each tool call")] = 60.0,
    no_elicitation: Annotated[
        bool, typer.Option("--no-elicitation", help="Never ask the MCP client to confirm a tool call")
    ] = False,
) -> None:
    """Serve the office as an MCP server (stdio by default); needs smcp-agent[mcp]."""
    import importlib.util

    if importlib.util.find_spec("mcp") is None:
        _fail("smcp-agent mcp needs the MCP server stack: pip install 'smcp-agent[mcp]'")
        raise typer.Exit(1)
    from smcp.agent.mcp._private import command
    from smcp.agent.mcp._private.http import is_loopback
    from smcp.core.errors import ConfigError

    opts: Options = ctx.obj
    opts.url, opts.office, opts.token = url or opts.url, office or opts.office, token or opts.token
    if not call_timeout > 0:
        raise UsageFault(f"--call-timeout must be a positive number of seconds, got {call_timeout}")
    try:
        where = command.parse_http(http) if http else None
        if where is not None and http_token is None and not is_loopback(where[0]):
            raise ConfigError(f"--http {http} is beyond loopback: give --http-token (or SMCP_MCP_TOKEN)")
    except ConfigError as exc:
        raise UsageFault(str(exc)) from None

    async def work(agent: AsyncAgent, opts: Options) -> int:
        return await command.run(
            agent,
            computers=computer,
            http=where,
            bearer_token=http_token,
            call_timeout=call_timeout,
            elicit_confirmation=not no_elicitation,
        )

    _run(ctx, work, cache=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; usage errors are one line on stderr and exit status 2."""
    try:
        from smcp.core._cli_help import plain_help

        code = plain_help(typer.main.get_command(app))(args=argv, standalone_mode=False)
    except UsageFault as exc:
        _usage_exit(str(exc))
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        # the parser's own errors (typer bundles its own click or uses click's): exit_code 2 = usage
        if getattr(exc, "exit_code", None) != 2 or not hasattr(exc, "format_message"):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stdout.write(exc.format_message() + "\n")
            sys.exit(2)
        _usage_exit(exc.format_message())
    sys.exit(code if isinstance(code, int) else 0)


def _usage_exit(message: str) -> NoReturn:
    _fail(" ".join(message.split()) + "; see --help")
    sys.exit(2)


if __name__ == "__main__":
    main()
