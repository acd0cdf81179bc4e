// A minimal MCP client over stdio (JSON-RPC, one message a line), shared
// by mcp.mjs, mcp_flow.mjs and pwmcp_flow.mjs: spawn the server,
// initialize it, make requests, run a flow of tool calls.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

// startServer spawns the server and returns its process and request,
// which sends a JSON-RPC request and resolves with its result.
export function startServer(cmd, args, options = {}) {
  const server = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], ...options });
  const pending = new Map();
  let nextID = 1;
  createInterface({ input: server.stdout }).on('line', (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not a JSON-RPC message
    }
    const p = pending.get(msg.id);
    if (p) {
      pending.delete(msg.id);
      msg.error ? p.reject(new Error(`${msg.error.code}: ${msg.error.message}`)) : p.resolve(msg.result);
    }
  });
  const request = (method, params) => {
    const id = nextID++;
    server.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  };
  return { server, request };
}

// initialize does MCP's handshake.
export async function initialize({ server, request }) {
  await request('initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'scry-integration', version: '0' },
  });
  server.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
}

// textOf joins a tool result's text parts.
export const textOf = (res) => (res.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');

// callTool calls a tool and throws when it answers with an error.
export async function callTool({ request }, name, args = {}) {
  const res = await request('tools/call', { name, arguments: args });
  if (res.isError) throw new Error(`${name}: ${textOf(res)}`);
  return res;
}

// runFlow initializes the server and runs flow, which returns the text to
// report; then it prints one JSON line, {...fields, "ok", "text" | "error"},
// and exits: 0 when the flow got through, 1 when a step failed, the server
// exited first or timeoutMs passed.
export async function runFlow(mcp, fields, flow, timeoutMs = 80_000) {
  const { server } = mcp;
  const finish = (ok, result) => {
    console.log(JSON.stringify({ ...fields, ok, ...result }));
    server.kill();
    process.exit(ok ? 0 : 1);
  };
  setTimeout(() => finish(false, { error: `timed out after ${timeoutMs / 1000}s` }), timeoutMs).unref();
  server.on('exit', (code) => finish(false, { error: `the MCP server exited (${code}) before the flow ended` }));
  try {
    await initialize(mcp);
    const text = await flow();
    server.removeAllListeners('exit');
    finish(true, { text });
  } catch (e) {
    server.removeAllListeners('exit');
    finish(false, { error: String(e?.message ?? e) });
  }
}
