// Playwright MCP (@playwright/mcp) driven over stdio through a whole page
// flow, as an agent's host does: browser_navigate, browser_snapshot,
// browser_type, browser_click, browser_wait_for, browser_take_screenshot,
// browser_evaluate, then browser_close. The refs type and click need come
// from the snapshot (its lines read `- textbox "name" [ref=e2]`).
// Prints one JSON line, {"client": "pwmcp", "ok", "text" | "error"};
// "text" is what browser_evaluate returned; exit 0 when every tool
// answered without an error, 1 when one did not.
//
// Environment:
//   SCRY_CDP_URL   scry's agent door, http://host:port
//   SCRY_TOKEN     the token, sent in the Authorization header (--cdp-header)
//   SCRY_PAGE_URL  the test's scopedSite
//   SCRY_OUT_DIR   where Playwright MCP may write its files
import { startServer, textOf, callTool, runFlow } from './mcpclient.mjs';

const cdpURL = process.env.SCRY_CDP_URL;
const token = process.env.SCRY_TOKEN ?? '';
const pageURL = process.env.SCRY_PAGE_URL;
const outDir = process.env.SCRY_OUT_DIR;
if (!cdpURL || !pageURL || !outDir) {
  console.error('usage: SCRY_CDP_URL=http://host:port SCRY_PAGE_URL=... SCRY_OUT_DIR=... [SCRY_TOKEN=...] node pwmcp_flow.mjs');
  process.exit(2);
}

// The server runs on this same pinned Node, not whatever `node` PATH has.
const mcp = startServer(process.execPath, [
  'node_modules/@playwright/mcp/cli.js',
  '--cdp-endpoint', cdpURL, '--cdp-header', `Authorization: Bearer ${token}`,
  '--output-dir', outDir, '--image-responses', 'allow',
], { env: { ...process.env, CI: 'true' } });
const call = (name, args) => callTool(mcp, name, args);

function ref(snapshot, role, name) {
  const m = snapshot.match(new RegExp(`${role} "${name}"[^\\n]*\\[ref=([^\\]]+)\\]`));
  if (!m) throw new Error(`browser_snapshot: no ${role} "${name}" in:\n${snapshot}`);
  return m[1];
}

await runFlow(mcp, { client: 'pwmcp' }, async () => {
  await call('browser_navigate', { url: pageURL });
  const snap = textOf(await call('browser_snapshot'));
  await call('browser_type', { element: 'name', target: ref(snap, 'textbox', 'name'), text: 'pwmcp', slowly: true });
  await call('browser_click', { element: 'click me', target: ref(snap, 'button', 'click me') });
  await call('browser_wait_for', { text: 'clicked:' });
  const shot = await call('browser_take_screenshot', { type: 'png' });
  if (!(shot.content ?? []).some((c) => c.type === 'image' && c.data?.length > 100)) {
    throw new Error(`browser_take_screenshot: no image in ${JSON.stringify(shot).slice(0, 300)}`);
  }
  const text = textOf(await call('browser_evaluate', { function: '() => document.querySelector("#out").textContent' }));
  await call('browser_close');
  return text;
});
