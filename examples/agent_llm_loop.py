"""Wiring an LLM tool loop to the Computers of an office, in a few lines.

The "model" here is scripted (no network): on the first turn it asks for the echo tool, on the
second it answers with what the tool returned. Swap ``ScriptedModel`` for a real client
(OpenAI, Anthropic, ...) and pass ``toolset.openai()`` / ``toolset.anthropic()`` as its tools.

    python examples/agent_llm_loop.py --url http://127.0.0.1:8000 --token T --office o1
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from smcp.agent import AsyncAgent, Toolset
from smcp.agent.llm import result_text


class ScriptedModel:
    """Stands in for a chat-completions API: returns tool calls, then a final answer."""

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        if messages[-1]["role"] == "tool":
            return {"role": "assistant", "content": f"The tool said: {messages[-1]['content']}"}
        echo = next(t["function"]["name"] for t in tools if t["function"]["name"].endswith("echo"))
        arguments = json.dumps({"text": messages[-1]["content"]})
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call-1", "function": {"name": echo, "arguments": arguments}}],
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
    print(asyncio.run(run(args.url, args.token, args.office, args.question)))


if __name__ == "__main__":
    main()
