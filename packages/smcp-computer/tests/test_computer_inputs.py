"""Input resolution order and placeholder rendering."""

from __future__ import annotations

import os
import pathlib

import pytest

from smcp.computer._config import parse_config
from smcp.computer._inputs import InputError, InputResolver, placeholders_in
from smcp.core.models import MCPServerInput, PickOption, PickStringInput, PromptStringInput

pytestmark = pytest.mark.anyio

TOKEN = PromptStringInput(id="tok", description="token", password=True)
REGION = PickStringInput(
    id="region",
    options=[PickOption(label="EU", value="eu"), PickOption(label="US", value="us")],
    default="eu",
)
PLAIN = PromptStringInput(id="plain")


def resolver(
    *,
    values: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    interactive: bool = False,
    answers: dict[str, str] | None = None,
    inputs: tuple[MCPServerInput, ...] = (TOKEN, REGION, PLAIN),
) -> InputResolver:
    asked: list[str] = []

    async def prompt(spec: MCPServerInput) -> str | None:
        asked.append(spec.id)
        return (answers or {}).get(spec.id)

    r = InputResolver(
        inputs, values=values, environ=env or {}, interactive=interactive, prompt=prompt, use_keyring=False
    )
    r.asked = asked  # type: ignore[attr-defined]
    return r


@pytest.mark.parametrize(
    ("values", "env", "interactive", "answers", "input_id", "expected"),
    [
        ({"tok": "explicit"}, {"A2C_SMCP_tok": "env"}, True, {"tok": "typed"}, "tok", "explicit"),
        ({}, {"A2C_SMCP_tok": "env"}, True, {"tok": "typed"}, "tok", "env"),
        ({}, {}, True, {"tok": "typed"}, "tok", "typed"),
        ({}, {}, False, {}, "region", "eu"),
        ({}, {}, True, {}, "region", "eu"),
        ({}, {"A2C_SMCP_region": "us"}, False, {}, "region", "us"),
    ],
)
async def test_resolution_order(
    values: dict[str, str],
    env: dict[str, str],
    interactive: bool,
    answers: dict[str, str],
    input_id: str,
    expected: str,
) -> None:
    assert (
        await resolver(values=values, env=env, interactive=interactive, answers=answers).resolve(input_id)
        == expected
    )


async def test_non_interactive_without_value_fails_clearly_and_never_prompts() -> None:
    r = resolver()
    with pytest.raises(InputError, match="A2C_SMCP_plain"):
        await r.resolve("plain")
    assert r.asked == []  # type: ignore[attr-defined]


async def test_prompted_value_is_kept_for_the_session() -> None:
    r = resolver(interactive=True, answers={"plain": "x"})
    assert await r.resolve("plain") == "x"
    assert await r.resolve("plain") == "x"
    assert r.asked == ["plain"]  # type: ignore[attr-defined]


async def test_pick_answer_must_be_an_option() -> None:
    with pytest.raises(InputError, match="not one of eu, us"):
        await resolver(interactive=True, answers={"region": "mars"}).resolve("region")


async def test_undeclared_input_is_an_error() -> None:
    with pytest.raises(InputError, match="not declared"):
        await resolver().resolve("nope")


async def test_render_every_placeholder_kind() -> None:
    cfg = parse_config(
        {
            "servers": {
                "s": {
                    "type": "stdio",
                    "server_parameters": {
                        "command": "${env:PYBIN}",
                        "args": ["--token=${input:tok}", "${userHome}${pathSeparator}x", "${input:region}"],
                        "env": {"K": "${input:tok}", "M": "${env:MISSING}"},
                    },
                }
            },
        }
    ).servers[0]
    r = resolver(values={"tok": "s3cret"}, env={"PYBIN": "/usr/bin/python3"})
    rendered = await r.render(cfg)
    params = rendered.server_parameters
    assert params.command == "/usr/bin/python3"  # type: ignore[union-attr]
    assert params.args == ["--token=s3cret", f"{pathlib.Path.home()}{os.sep}x", "eu"]  # type: ignore[union-attr]
    assert params.env == {"K": "s3cret", "M": ""}  # type: ignore[union-attr]
    # the raw configuration is untouched (get_config shows placeholders)
    assert cfg.server_parameters.env == {"K": "${input:tok}", "M": "${env:MISSING}"}  # type: ignore[union-attr]
    assert placeholders_in(cfg.server_parameters.model_dump()) == {"tok", "region"}


async def test_render_names_the_server_when_an_input_is_missing() -> None:
    cfg = parse_config(
        {
            "servers": {
                "weather": {
                    "type": "streamable",
                    "server_parameters": {
                        "url": "http://h/mcp",
                        "headers": {"Authorization": "Bearer ${input:plain}"},
                    },
                }
            }
        }
    ).servers[0]
    with pytest.raises(InputError, match="server 'weather': input 'plain' has no value"):
        await resolver().render(cfg)
