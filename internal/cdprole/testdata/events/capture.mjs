// Captures real CDP events with cookie values from Chromium (see
// internal/cdprole/testdata/events/README). Usage: node capture.mjs WS_URL OUTDIR
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';

const [wsURL, outDir] = process.argv.slice(2);
const SECRET = 'sEcReT-HttpOnly-4711';
const PLAIN = 'plain-cookie-0815';

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/set')) {
    res.setHeader('Set-Cookie', [`sid=${SECRET}; HttpOnly; Path=/`, `pref=${PLAIN}; Path=/`, `bad=${SECRET}; Domain=other.example; Path=/`]);
    res.end('<html><body>set</body></html>');
  } else if (req.url.startsWith('/auth')) {
    res.statusCode = 401; res.setHeader('WWW-Authenticate', 'Basic realm="x"'); res.end('no');
  } else {
    res.setHeader('Content-Type', 'text/html');
    res.end(`<html><body>get<script>
      const ws = new WebSocket('ws://' + location.host + '/ws');
      fetch('/auth').catch(()=>{});
    </script></body></html>`);
  }
});
server.on('upgrade', (req, sock) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC11B65').digest('base64');
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSet-Cookie: wsc=${SECRET}; HttpOnly\r\n\r\n`);
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const ws = new WebSocket(wsURL);
await new Promise((r, j) => { ws.onopen = r; ws.onerror = j; });
let id = 0; const pending = new Map(); const got = []; const prefixes = new Set();
const waiters = [];
ws.onmessage = (ev) => {
  const text = ev.data; got.push(text);
  prefixes.add(text.slice(0, 10));
  const m = JSON.parse(text);
  if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); }
  for (const w of waiters.slice()) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.res(m); }
  if (m.method === 'Fetch.requestPaused') send('Fetch.continueRequest', { requestId: m.params.requestId }, m.sessionId);
  if (m.method === 'Fetch.authRequired') send('Fetch.continueWithAuth', { requestId: m.params.requestId, authChallengeResponse: { response: 'CancelAuth' } }, m.sessionId);
};
function send(method, params = {}, sessionId) {
  const msg = { id: ++id, method, params }; if (sessionId) msg.sessionId = sessionId;
  ws.send(JSON.stringify(msg));
  return new Promise(r => pending.set(msg.id, r));
}
const waitFor = (pred) => new Promise(res => waiters.push({ pred, res }));

const { result: { targetId } } = await send('Target.createTarget', { url: 'about:blank' });
const { result: { sessionId } } = await send('Target.attachToTarget', { targetId, flatten: true });
await send('Network.enable', {}, sessionId);
await send('Page.enable', {}, sessionId);
let loaded = waitFor(m => m.method === 'Page.loadEventFired');
await send('Page.navigate', { url: base + '/set' }, sessionId); await loaded;
console.error("step fetch"); await send('Fetch.enable', { handleAuthRequests: true, patterns: [{ urlPattern: '*/get*', requestStage: 'Request' }, { urlPattern: '*/get*', requestStage: 'Response' }, { urlPattern: '*/auth*' }] }, sessionId);
const hs = waitFor(m => m.method === 'Network.webSocketHandshakeResponseReceived');
const auth = waitFor(m => m.method === 'Fetch.authRequired');
loaded = waitFor(m => m.method === 'Page.loadEventFired');
await send("Page.navigate", { url: base + "/get" }, sessionId); console.error("nav"); await loaded; console.error("loaded"); const to = (p, n) => Promise.race([p, new Promise(r => setTimeout(() => { console.error("timeout", n); r(); }, 3000))]); await to(hs, "hs"); await to(auth, "auth");
await send('Fetch.disable', {}, sessionId);
// A non-flat session: events come wrapped in Target.receivedMessageFromTarget.
const { result: { sessionId: old } } = await send('Target.attachToTarget', { targetId, flatten: false });
const wrapped = waitFor(m => m.method === 'Target.receivedMessageFromTarget' && m.params.message.includes(SECRET));
await send('Target.sendMessageToTarget', { sessionId: old, message: JSON.stringify({ id: 1, method: 'Network.enable' }) });
await send('Target.sendMessageToTarget', { sessionId: old, message: JSON.stringify({ id: 2, method: 'Page.reload' }) });
await to(wrapped, "wrapped");

fs.mkdirSync(outDir, { recursive: true });
const kinds = new Map();
for (const t of got) {
  const m = JSON.parse(t);
  if (!m.method || !t.includes(SECRET)) continue;
  const n = (kinds.get(m.method) || 0) + 1; kinds.set(m.method, n);
  if (n <= 2) fs.writeFileSync(`${outDir}/${m.method}.${n}.json`, t);
}
console.log('ws events', got.filter(t => t.includes('webSocket')).map(t => JSON.parse(t).method).join(' ')); console.log('prefixes', [...prefixes].join(' | '));
console.log('events with the secret', JSON.stringify([...kinds]));
const notMethodFirst = got.filter(t => !t.startsWith('{"id":') && !t.startsWith('{"method":"'));
console.log('messages not starting {"id": or {"method":"', notMethodFirst.length);
ws.close(); server.close();
process.exit(0);
