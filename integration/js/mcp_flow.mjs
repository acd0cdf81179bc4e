// chrome-devtools-mcp driven over stdio through a whole page flow, as an
// agent's host does: new_page, navigate_page, take_snapshot, fill, click,
// take_screenshot, evaluate_script, close_page. The uids fill and click
// need come from the snapshot (its lines read `uid=1_3 textbox "name"`).
// Prints one JSON line, {"client": "mcp", "ok", "text" | "error"}; "text"
// is what evaluate_script returned; exit 0 when every tool answered
// without an error, 1 when one did not.
//
// Environment:
//   SCRY_WS_URL    scry's stable endpoint, ws://host:port/
//   SCRY_TOKEN     the token, sent in the Authorization header (--wsHeaders)
//   SCRY_PAGE_URL  the test's scopedSite
import { startServer, textOf, callTool, runFlow } from './mcpclient.mjs';

const wsURL = process.env.SCRY_WS_URL;
const token = process.env.SCRY_TOKEN ?? '';
const pageURL = process.env.SCRY_PAGE_URL;
if (!wsURL || !pageURL) {
  console.error('usage: SCRY_WS_URL=ws://host:port/ SCRY_PAGE_URL=... [SCRY_TOKEN=...] node mcp_flow.mjs');
  process.exit(2);
}

// The server runs on this same pinned Node, not whatever `node` PATH has.
const mcp = startServer(process.execPath, [
  'node_modules/chrome-devtools-mcp/build/src/bin/chrome-devtools-mcp.js',
  '--no-usage-statistics', '--no-performance-crux',
  '--wsEndpoint', wsURL, '--wsHeaders', JSON.stringify({ Authorization: `Bearer ${token}` }),
], { env: { ...process.env, CI: 'true' } });
const call = (name, args) => callTool(mcp, name, args);

function uid(snapshot, role, name) {
  const m = snapshot.match(new RegExp(`uid=(\\S+) ${role} "${name}"`));
  if (!m) throw new Error(`take_snapshot: no ${role} "${name}" in:\n${snapshot}`);
  return m[1];
}

await runFlow(mcp, { client: 'mcp' }, async () => {
  // Page tools want the page's number (--page-id-routing, the default):
  // the one new_page opened is the selected one in its answer's list.
  const pageId = selectedPageId(textOf(await call('new_page', { url: 'about:blank' })));
  const onPage = (name, args = {}) => call(name, { pageId, ...args });
  await onPage('navigate_page', { type: 'url', url: pageURL });
  const snap = textOf(await onPage('take_snapshot'));
  await onPage('fill', { uid: uid(snap, 'textbox', 'name'), value: 'mcp' });
  await onPage('click', { uid: uid(snap, 'button', 'click me') });
  await onPage('wait_for', { text: ['clicked:'] });
  const shot = await onPage('take_screenshot');
  if (!(shot.content ?? []).some((c) => c.type === 'image' && c.data?.length > 100)) {
    throw new Error(`take_screenshot: no image in ${JSON.stringify(shot).slice(0, 300)}`);
  }
  const text = textOf(await onPage('evaluate_script', { function: '() => document.querySelector("#out").textContent' }));
  await call('close_page', { pageId });
  return text;
});

// selectedPageId finds the selected page in a tool's list of pages
// (`2: http://... [selected]`).
function selectedPageId(list) {
  const m = list.match(/^(\d+): .*\[selected\]/m);
  if (!m) throw new Error(`no selected page in:\n${list}`);
  return Number(m[1]);
}
