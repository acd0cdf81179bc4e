// Drives an MCP server over stdio the way an MCP client (an agent's host)
// does: initialize, then one tool call, and prints one JSON line,
// {"client", "ok", "text" | "error"}; exit 0 when the tool answered
// without an error, 1 when it did not.
//
// Environment:
//   SCRY_MCP_CMD   the server's command line as a JSON array, e.g.
//                  ["node","node_modules/chrome-devtools-mcp/build/src/bin/chrome-devtools-mcp.js","--wsEndpoint","ws://..."]
//   SCRY_MCP_TOOL  the tool to call (list_pages)
//   SCRY_MCP_ARGS  its arguments as a JSON object (default {})
//   SCRY_MCP_FIRST optional calls to make before it, in one session, as a
//                  JSON array of {"name", "arguments"}
import { startServer, textOf, callTool, runFlow } from './mcpclient.mjs';

const cmd = JSON.parse(process.env.SCRY_MCP_CMD ?? '[]');
const tool = process.env.SCRY_MCP_TOOL;
const toolArgs = JSON.parse(process.env.SCRY_MCP_ARGS || '{}');
if (cmd.length === 0 || !tool) {
  console.error('usage: SCRY_MCP_CMD=\'["server", "args"]\' SCRY_MCP_TOOL=name [SCRY_MCP_ARGS={}] node mcp.mjs');
  process.exit(2);
}

const mcp = startServer(cmd[0], cmd.slice(1));
await runFlow(mcp, { client: 'mcp', tool }, async () => {
  for (const call of JSON.parse(process.env.SCRY_MCP_FIRST || '[]')) {
    await callTool(mcp, call.name, call.arguments);
  }
  const res = await mcp.request('tools/call', { name: tool, arguments: toolArgs });
  const text = textOf(res) || JSON.stringify(res);
  if (res.isError) throw new Error(text);
  return text;
}, 60_000);
