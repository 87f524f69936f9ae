"""Input values and placeholder rendering for server configurations.

Placeholders ``${input:id}``, ``${env:VAR}``, ``${userHome}`` and ``${pathSeparator}`` stay raw in
the loaded configuration (that is what ``client:get_config`` shows) and are rendered at every
real start, so a changed value or environment takes effect on the next restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from smcp.computer._errors import InputError
from smcp.core.naming import input_env_var

if TYPE_CHECKING:
    from smcp.core.models import MCPServerConfig, MCPServerInput

__all__ = ["InputError", "InputResolver", "placeholders_in"]

logger = logging.getLogger("smcp.computer")

_PLACEHOLDER = re.compile(r"\$\{(?:(input|env):([^}]+)|(userHome)|(pathSeparator))\}")
KEYRING_SERVICE = "smcp-computer"

Prompt = Callable[["MCPServerInput"], Awaitable[str | None]]


def placeholders_in(value: Any) -> set[str]:
    """The input ids a (nested) value refers to."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(m.group(2) for m in _PLACEHOLDER.finditer(value) if m.group(1) == "input")
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= placeholders_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= placeholders_in(item)
    return found


def _keyring_get(input_id: str) -> str | None:
    try:
        import keyring
    except ImportError:
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, input_id)
    except Exception as exc:  # no backend, locked keychain...
        logger.debug("keyring lookup for input %r failed: %s", input_id, exc)
        return None
    return value if isinstance(value, str) else None


async def _tty_prompt(spec: MCPServerInput) -> str | None:
    """Ask on the terminal (stderr for the question, getpass for passwords)."""

    def ask() -> str | None:
        import getpass

        label = spec.description or spec.id
        if spec.type == "pickString":
            choices = ", ".join(f"{opt.label}={opt.value}" for opt in spec.options)
            label = f"{label} [{choices}]"
        if getattr(spec, "default", None):
            label = f"{label} (default {spec.default})"  # type: ignore[union-attr]
        if spec.type == "promptString" and spec.password:
            return getpass.getpass(f"{label}: ", stream=sys.stderr) or None
        sys.stderr.write(f"{label}: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        return line.rstrip("\n") or None

    return await asyncio.to_thread(ask)


class InputResolver:
    """Resolves input values in a fixed order and renders placeholders.

    Order: an explicit value (``values`` / :meth:`set_value`), the environment variable
    ``A2C_SMCP_<id>``, the OS keyring for password inputs (when ``keyring`` is installed), a
    prompt (interactive runs only), the input's default. Prompted values are kept for the session.
    """

    def __init__(
        self,
        inputs: Sequence[MCPServerInput] = (),
        *,
        values: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        interactive: bool | None = None,
        prompt: Prompt | None = None,
        use_keyring: bool = True,
    ) -> None:
        self._inputs: dict[str, MCPServerInput] = {}
        self.set_inputs(inputs)
        self._values: dict[str, str] = dict(values or {})
        self._environ = environ if environ is not None else os.environ
        self._interactive = sys.stdin.isatty() if interactive is None else interactive
        self._prompt = prompt or _tty_prompt
        self._use_keyring = use_keyring
        self._lock = asyncio.Lock()

    @property
    def inputs(self) -> list[MCPServerInput]:
        return list(self._inputs.values())

    def set_inputs(self, inputs: Sequence[MCPServerInput]) -> None:
        self._inputs = {spec.id: spec for spec in inputs}

    def set_value(self, input_id: str, value: str) -> None:
        self._values[input_id] = value

    def clear_value(self, input_id: str) -> None:
        self._values.pop(input_id, None)

    async def resolve(self, input_id: str) -> str:
        spec = self._inputs.get(input_id)
        if spec is None:
            raise InputError(f'input {input_id!r} is not declared; add it to the "inputs" list of the config')
        if input_id in self._values:
            return self._values[input_id]
        env_name = input_env_var(input_id)
        if env_name in self._environ:
            return self._environ[env_name]
        if self._use_keyring and spec.type == "promptString" and spec.password:
            stored = await asyncio.to_thread(_keyring_get, input_id)
            if stored is not None:
                return stored
        if self._interactive:
            async with self._lock:  # one question at a time on the terminal
                if input_id in self._values:
                    return self._values[input_id]
                answer = await self._prompt(spec)
                if answer is not None:
                    self._check_choice(spec, answer)
                    self._values[input_id] = answer
                    return answer
        default = getattr(spec, "default", None)
        if isinstance(default, str):
            return default
        raise InputError(
            f"input {input_id!r} has no value: set the environment variable {env_name}, "
            "give it a default in the config, or run on a terminal to be asked"
        )

    @staticmethod
    def _check_choice(spec: MCPServerInput, answer: str) -> None:
        if spec.type == "pickString" and all(opt.value != answer for opt in spec.options):
            allowed = ", ".join(opt.value for opt in spec.options)
            raise InputError(f"input {spec.id!r}: {answer!r} is not one of {allowed}")

    async def _render_value(self, value: Any, server: str) -> Any:
        if isinstance(value, str):
            whole = _PLACEHOLDER.fullmatch(value)
            if whole and whole.group(1) == "input":
                return await self._resolve_for(whole.group(2), server)
            parts: list[str] = []
            last = 0
            for match in _PLACEHOLDER.finditer(value):
                parts.append(value[last : match.start()])
                kind, name = match.group(1), match.group(2)
                if kind == "input":
                    parts.append(await self._resolve_for(name, server))
                elif kind == "env":
                    if name not in self._environ:
                        logger.warning("server %r: ${env:%s} is not set; using an empty string", server, name)
                    parts.append(self._environ.get(name, ""))
                elif match.group(3):
                    parts.append(str(pathlib.Path.home()))
                else:
                    parts.append(os.sep)
                last = match.end()
            parts.append(value[last:])
            return "".join(parts)
        if isinstance(value, Mapping):
            return {key: await self._render_value(item, server) for key, item in value.items()}
        if isinstance(value, list):
            return [await self._render_value(item, server) for item in value]
        return value

    async def _resolve_for(self, input_id: str, server: str) -> str:
        try:
            return await self.resolve(input_id)
        except InputError as exc:
            raise InputError(f"server {server!r}: {exc}") from None

    async def render(self, config: MCPServerConfig) -> MCPServerConfig:
        """A copy of ``config`` whose ``server_parameters`` have every placeholder rendered.

        A stdio ``envFile`` (its path rendered too) is read now and merged under the explicit ``env``.
        """
        raw = config.server_parameters.model_dump(mode="python")
        rendered = await self._render_value(raw, config.name)
        env_file = getattr(config, "env_file", None)
        if isinstance(env_file, str) and env_file:
            from smcp.computer._envfile import EnvFileError, merge_env_file

            path = await self._render_value(env_file, config.name)
            try:
                rendered["env"] = merge_env_file(rendered.get("env"), str(path))
            except EnvFileError as exc:
                raise EnvFileError(f"server {config.name!r}: {exc}") from None
        data = config.model_dump(mode="python")
        data["server_parameters"] = rendered
        return type(config).model_validate(data)
