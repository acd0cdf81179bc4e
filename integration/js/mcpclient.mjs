// A minimal MCP client over stdio (JSON-RPC, one message a line), shared
// by mcp.mjs and mcp_flow.mjs: spawn the server, initialize it, make
// requests.
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
