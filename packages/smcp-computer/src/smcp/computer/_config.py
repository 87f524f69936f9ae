"""Loading ``mcp.json`` files (the official shape, as JSON or YAML).

Every invalid entry becomes a :class:`ConfigProblem` naming the file, the path inside it and the
reason; valid entries are still loaded, so one typo does not take every server down. Problems with
``severity="warning"`` (an ignored ``oauth`` key, a ``vrl`` script without ``vrl-python``) keep
their entry.
"""

from __future__ import annotations

import functools
import json
import pathlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from smcp.computer._errors import ConfigError
from smcp.core.naming import InvalidBundleIdError, resolve_bundle_id

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from smcp.core.models import MCPServerConfig, MCPServerInput

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "LoadedConfig",
    "bundle_id_of",
    "load_config",
    "merge_configs",
    "parse_config",
]


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        kind = "warning: " if self.severity == "warning" else ""
        return f"{self.file}: {self.path}: {kind}{self.message}"


@dataclass(frozen=True)
class LoadedConfig:
    servers: list[MCPServerConfig] = field(default_factory=list)
    inputs: list[MCPServerInput] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings are allowed)."""
        return not self.errors

    @property
    def errors(self) -> list[ConfigProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[ConfigProblem]:
        return [p for p in self.problems if p.severity == "warning"]


@functools.cache
def _server_adapter() -> TypeAdapter[MCPServerConfig]:
    from typing import Annotated

    from pydantic import Field, TypeAdapter

    from smcp.computer._envfile import StdioServerConfigWithEnvFile
    from smcp.core.models import SseServerConfig, StreamableServerConfig

    # the stdio variant keeps the SDK-local envFile (excluded from serialisation)
    union = StdioServerConfigWithEnvFile | StreamableServerConfig | SseServerConfig
    adapter: TypeAdapter[MCPServerConfig] = TypeAdapter(Annotated[union, Field(discriminator="type")])
    return adapter


@functools.cache
def _input_adapter() -> TypeAdapter[MCPServerInput]:
    from pydantic import TypeAdapter

    from smcp.core.models import MCPServerInput

    return TypeAdapter(MCPServerInput)


def bundle_id_of(config: MCPServerConfig) -> str:
    """The resolved bundle id of a raw (un-rendered) server configuration."""
    params = config.server_parameters
    if config.type == "stdio":
        return resolve_bundle_id(
            config.name,
            "stdio",
            explicit=config.bundle_id,
            command=params.command,  # type: ignore[union-attr]
            args=params.args,  # type: ignore[union-attr]
            env=params.env,  # type: ignore[union-attr]
        )
    return resolve_bundle_id(
        config.name,
        config.type,
        explicit=config.bundle_id,
        url=params.url,  # type: ignore[union-attr]
        headers=params.headers,  # type: ignore[union-attr]
    )


def _errors(exc: Any, prefix: str) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in err["loc"]]
        # Drop the discriminator tag pydantic puts in the path ("servers.x.stdio.server_parameters").
        if loc and loc[0] in ("stdio", "streamable", "sse", "promptString", "pickString", "command"):
            loc = loc[1:]
        out.append((".".join([prefix, *loc]), err["msg"]))
    return out


_Report = Callable[[str, str, Literal["error", "warning"]], None]

_OAUTH_NOTE = (
    "host-driven OAuth is not supported by this Computer; the key is ignored (never sent on the wire). "
    "Provide credentials in server_parameters.headers instead; an HTTP 401/403 from the server "
    "surfaces as error 4006/4007"
)


def _check_local_keys(entry: Mapping[str, Any], server: MCPServerConfig, path: str, problem: _Report) -> bool:
    """Check ``vrl``, ``envFile`` and ``oauth``; False when the entry must be dropped."""
    if "oauth" in entry:
        note = (
            _OAUTH_NOTE
            if server.type == "streamable"
            else f"only streamable servers may have it; {_OAUTH_NOTE}"
        )
        problem(f"{path}.oauth", note, "warning")
    if "envFile" in entry and server.type != "stdio":
        problem(
            f"{path}.envFile", f"applies to stdio servers only; ignored on a {server.type} server", "warning"
        )
    if server.vrl is not None and server.vrl.strip():
        from smcp.computer._vrl import VrlUnavailableError, check_script

        try:
            diagnostic = check_script(server.vrl)
        except VrlUnavailableError as exc:
            problem(
                f"{path}.vrl", f"the script is not run (no a2c_vrl_transformed in results): {exc}", "warning"
            )
        else:
            if diagnostic is not None:
                problem(f"{path}.vrl", f"invalid VRL script: {diagnostic}", "error")
                return False
    return True


def parse_config(data: object, *, source: str = "<memory>") -> LoadedConfig:
    """Validate already-parsed config data; see :func:`load_config`."""
    from pydantic import ValidationError

    problems: list[ConfigProblem] = []
    servers: list[MCPServerConfig] = []
    inputs: list[MCPServerInput] = []

    def problem(path: str, message: str, severity: Literal["error", "warning"] = "error") -> None:
        problems.append(ConfigProblem(source, path, message, severity))

    if not isinstance(data, Mapping):
        problem("<root>", 'expected an object with "servers" and "inputs"')
        return LoadedConfig(problems=problems)
    unknown = set(data) - {"servers", "inputs", "$schema"}
    for key in sorted(unknown, key=str):  # YAML keys need not be strings
        where = key if isinstance(key, str) and key else repr(key)
        problem(where, 'unknown top-level key (expected "servers" and "inputs")')

    raw_inputs = data.get("inputs", [])
    seen_inputs: set[str] = set()
    if not isinstance(raw_inputs, list):
        problem("inputs", "expected a list")
        raw_inputs = []
    for index, entry in enumerate(raw_inputs):
        try:
            parsed_input = _input_adapter().validate_python(entry)
        except ValidationError as exc:
            for path, message in _errors(exc, f"inputs[{index}]"):
                problem(path, message)
            continue
        if parsed_input.id in seen_inputs:
            problem(f"inputs[{index}].id", f"duplicate input id {parsed_input.id!r}; the first one is used")
            continue
        seen_inputs.add(parsed_input.id)
        inputs.append(parsed_input)

    raw_servers = data.get("servers", {})
    if not isinstance(raw_servers, Mapping):
        problem("servers", "expected an object mapping server names to configurations")
        raw_servers = {}
    seen_bundles: dict[str, str] = {}
    for name, entry in raw_servers.items():
        path = f"servers.{name}"
        if not isinstance(entry, Mapping):
            problem(path, "expected an object")
            continue
        if "name" in entry and entry["name"] != name:
            problem(
                f"{path}.name",
                f"{entry['name']!r} differs from the key {name!r}; remove it or make them equal",
            )
            continue
        try:
            server = _server_adapter().validate_python({**entry, "name": name})
        except ValidationError as exc:
            for sub, message in _errors(exc, path):
                problem(sub, message)
            continue
        if not _check_local_keys(entry, server, path, problem):
            continue
        try:
            bundle = bundle_id_of(server)
        except InvalidBundleIdError as exc:
            problem(f"{path}.bundle_id", str(exc))
            continue
        if bundle in seen_bundles:
            problem(path, f"bundle_id {bundle!r} is already used by server {seen_bundles[bundle]!r}; skipped")
            continue
        seen_bundles[bundle] = name
        servers.append(server)
    return LoadedConfig(servers, inputs, problems)


def load_config(path: str | pathlib.Path) -> LoadedConfig:
    """Load an ``mcp.json`` (``{"servers": {...}, "inputs": [...]}``); ``.yaml``/``.yml`` files are YAML."""
    file = pathlib.Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    try:
        if file.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{file}: nested too deeply to be a configuration") from None
    except Exception as exc:  # yaml.YAMLError and friends
        raise ConfigError(f"{file}: invalid YAML: {exc}") from None
    return parse_config(data, source=str(file))


def merge_configs(paths: Iterable[str | pathlib.Path]) -> LoadedConfig:
    """Load several files into one configuration: every server in order, the first input of each
    id wins, problems of all files kept. Raises :class:`ConfigError` for an unreadable file."""
    servers: list[MCPServerConfig] = []
    inputs: list[MCPServerInput] = []
    seen_inputs: set[str] = set()
    problems: list[ConfigProblem] = []
    for path in paths:
        loaded = load_config(path)
        servers.extend(loaded.servers)
        for spec in loaded.inputs:
            if spec.id not in seen_inputs:
                seen_inputs.add(spec.id)
                inputs.append(spec)
        problems.extend(loaded.problems)
    return LoadedConfig(servers, inputs, problems)
