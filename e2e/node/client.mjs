// Spawns an MCP server over stdio with the official TypeScript SDK, lists its tools and calls one.
// Usage: node client.mjs '<json: {"command", "args", "env", "tool", "arguments"}>'
// Prints one JSON line: {"protocolVersion", "tools": [names], "result": CallToolResult}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const spec = JSON.parse(process.argv[2]);
const transport = new StdioClientTransport({
  command: spec.command,
  args: spec.args,
  env: spec.env,
  stderr: "inherit",
});
const client = new Client({ name: "ts-sdk-e2e", version: "0.0.0" });
const timer = setTimeout(() => {
  console.error("timed out");
  process.exit(3);
}, 60000);
try {
  await client.connect(transport);
  const listed = await client.listTools();
  const result = await client.callTool({ name: spec.tool, arguments: spec.arguments });
  console.log(
    JSON.stringify({
      protocolVersion: transport._protocolVersion ?? null,
      server: client.getServerVersion(),
      tools: listed.tools.map((t) => t.name),
      result,
    }),
  );
} finally {
  clearTimeout(timer);
  await client.close();
}
