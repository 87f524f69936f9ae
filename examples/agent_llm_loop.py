"""Wiring an LLM tool loop to the Computers of an office, in a few lines.

The "model" here is scripted (no network): on the first turn it asks for a tool it knows how to
fill in (an ``echo`` tool, or the ``calculate`` tool of ``examples/computer_embedded.py`` and the
demo), on the second it answers with what the tool returned. Swap ``ScriptedModel`` for a real
client (OpenAI, Anthropic, ...) and pass ``toolset.openai()`` / ``toolset.anthropic()`` as its tools.

    python examples/computer_embedded.py --url http://127.0.0.1:8000 --token T --office o1 &
    python examples/agent_llm_loop.py --url http://127.0.0.1:8000 --token T --office o1 --question "6 * 7"
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from smcp.agent import AsyncAgent, Toolset
from smcp.agent.llm import result_text

#: the tools the scripted model can use, by the end of their name, and how it fills in their arguments
KNOWN_TOOLS: dict[str, Callable[[str], dict[str, Any]]] = {
    "echo": lambda question: {"text": question},
    "calculate": lambda question: {"expression": question},
}


class NoUsableTool(Exception):
    """The office offers no tool the scripted model knows how to call."""


class ScriptedModel:
    """Stands in for a chat-completions API: returns tool calls, then a final answer."""

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        if messages[-1]["role"] == "tool":
            return {"role": "assistant", "content": f"The tool said: {messages[-1]['content']}"}
        names = [t["function"]["name"] for t in tools]
        usable = [
            (name, fill) for suffix, fill in KNOWN_TOOLS.items() for name in names if name.endswith(suffix)
        ]
        if not usable:
            offered = ", ".join(names) or "none (is a Computer in this office?)"
            raise NoUsableTool(
                f"no tool ending in {' or '.join(KNOWN_TOOLS)} in this office; tools offered: {offered}. "
                "Start examples/computer_embedded.py in the same office, or teach ScriptedModel your tool."
            )
        tool, fill = usable[0]
        arguments = json.dumps(fill(messages[-1]["content"]))
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call-1", "function": {"name": tool, "arguments": arguments}}],
        }


async def run(url: str, token: str, office: str, question: str) -> str:
    model = ScriptedModel()
    async with AsyncAgent(url, token=token, office=office, name="llm-loop") as agent:
        await agent.cache.wait_idle(30)
        toolset = Toolset.from_cache(agent.cache)  # every tool of every Computer in the office
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        while True:
            reply = model.complete(messages, toolset.openai())
            messages.append(reply)
            if not reply.get("tool_calls"):
                return str(reply["content"])
            for call in reply["tool_calls"]:
                result = await toolset.call(agent, call["function"]["name"], call["function"]["arguments"])
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result_text(result)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--office", required=True)
    parser.add_argument("--question", default="hello from the model")
    args = parser.parse_args()
    try:
        print(asyncio.run(run(args.url, args.token, args.office, args.question)))
    except NoUsableTool as exc:
        raise SystemExit(f"agent_llm_loop: {exc}") from None


if __name__ == "__main__":
    main()
