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
import { startServer, initialize, textOf } from './mcpclient.mjs';

const cmd = JSON.parse(process.env.SCRY_MCP_CMD ?? '[]');
const tool = process.env.SCRY_MCP_TOOL;
const toolArgs = JSON.parse(process.env.SCRY_MCP_ARGS || '{}');
if (cmd.length === 0 || !tool) {
  console.error('usage: SCRY_MCP_CMD=\'["server", "args"]\' SCRY_MCP_TOOL=name [SCRY_MCP_ARGS={}] node mcp.mjs');
  process.exit(2);
}

const mcp = startServer(cmd[0], cmd.slice(1));
const { server, request } = mcp;

function finish(ok, field) {
  console.log(JSON.stringify({ client: 'mcp', tool, ok, ...field }));
  server.kill();
  process.exit(ok ? 0 : 1);
}

const timer = setTimeout(() => finish(false, { error: 'timed out after 60s' }), 60_000);
server.on('exit', (code) => finish(false, { error: `the MCP server exited (${code}) before answering` }));
try {
  await initialize(mcp);
  for (const call of JSON.parse(process.env.SCRY_MCP_FIRST || '[]')) {
    const r = await request('tools/call', call);
    if (r.isError) throw new Error(`${call.name}: ${(r.content ?? []).map((c) => c.text).join('\n')}`);
  }
  const res = await request('tools/call', { name: tool, arguments: toolArgs });
  clearTimeout(timer);
  const text = textOf(res) || JSON.stringify(res);
  server.removeAllListeners('exit');
  finish(!res.isError, res.isError ? { error: text } : { text });
} catch (e) {
  server.removeAllListeners('exit');
  finish(false, { error: String(e?.message ?? e) });
}
