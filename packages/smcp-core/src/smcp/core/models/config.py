from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from smcp.core.models._base import ComputerRequest, WireModel
from smcp.core.models._duration import format_duration, parse_duration
from smcp.core.models.tools import ToolMeta


def _to_seconds(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


#: A duration given as seconds or as an ISO-8601 string; written as an ISO-8601 string.
IsoDuration = Annotated[
    float,
    BeforeValidator(_to_seconds),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]


# --- inputs -------------------------------------------------------------------------------


class _InputBase(WireModel):
    id: str = Field(min_length=1)
    description: str = ""


class PromptStringInput(_InputBase):
    __keep_none__ = frozenset({"default", "password"})

    type: Literal["promptString"] = "promptString"
    default: str | None = None
    password: bool | None = None


class PickOption(WireModel):
    label: str = Field(min_length=1)
    value: str = Field(min_length=1)


class PickStringInput(_InputBase):
    __keep_none__ = frozenset({"default"})

    type: Literal["pickString"] = "pickString"
    options: list[PickOption] = Field(min_length=1)
    default: str | None = None

    @field_validator("options", mode="before")
    @classmethod
    def _reject_legacy_options(cls, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(item, str) for item in value):
            example = [{"label": item, "value": item} for item in value if isinstance(item, str)][:2]
            raise ValueError(
                "pickString options must be objects with 'label' and 'value' "
                f"(the plain string list is no longer accepted); write e.g. {example}"
            )
        return value

    @model_validator(mode="after")
    def _default_is_an_option(self) -> PickStringInput:
        if self.default is not None and all(opt.value != self.default for opt in self.options):
            raise ValueError(f"default {self.default!r} is not the value of any option")
        return self


class CommandInput(_InputBase):
    type: Literal["command"] = "command"
    command: str
    args: dict[str, str] | None = None


MCPServerInput = Annotated[PromptStringInput | PickStringInput | CommandInput, Field(discriminator="type")]


# --- server parameters ----------------------------------------------------------------------


class StdioServerParameters(WireModel):
    __keep_none__ = frozenset({"env", "cwd"})

    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    encoding: str = "utf-8"
    encoding_error_handler: Literal["strict", "ignore", "replace"] = "strict"


class StreamableHttpServerParameters(WireModel):
    __keep_none__ = frozenset({"headers"})

    url: str
    headers: dict[str, str] | None = None
    timeout: IsoDuration = 30.0
    sse_read_timeout: IsoDuration = 300.0
    terminate_on_close: bool = True


class SseServerParameters(WireModel):
    __keep_none__ = frozenset({"headers"})

    url: str
    headers: dict[str, str] | None = None
    timeout: float = 5.0
    sse_read_timeout: float = 300.0


class _ServerConfigBase(WireModel):
    __keep_none__ = frozenset({"bundle_id", "default_tool_meta", "vrl"})

    name: str = Field(min_length=1)
    bundle_id: str | None = None
    disabled: bool = False
    forbidden_tools: list[str] = Field(default_factory=list)
    tool_meta: dict[str, ToolMeta] = Field(default_factory=dict)
    default_tool_meta: ToolMeta | None = None
    vrl: str | None = None


class StdioServerConfig(_ServerConfigBase):
    type: Literal["stdio"] = "stdio"
    server_parameters: StdioServerParameters


class StreamableServerConfig(_ServerConfigBase):
    type: Literal["streamable"] = "streamable"
    server_parameters: StreamableHttpServerParameters


class SseServerConfig(_ServerConfigBase):
    type: Literal["sse"] = "sse"
    server_parameters: SseServerParameters


MCPServerConfig = Annotated[
    StdioServerConfig | StreamableServerConfig | SseServerConfig, Field(discriminator="type")
]


class GetComputerConfigReq(ComputerRequest):
    """``client:get_config``."""


class GetComputerConfigRet(WireModel):
    """Reply of ``client:get_config``: raw declarations keyed by bundle id (no ``req_id``)."""

    servers: dict[str, MCPServerConfig]
    inputs: list[MCPServerInput] | None = None
