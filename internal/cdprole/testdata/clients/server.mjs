import http from 'node:http';
export async function serve() {
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/file')) {
      res.setHeader('Content-Disposition', 'attachment; filename="x.txt"'); res.end('data'); return;
    }
    if (req.url.startsWith('/api')) { res.setHeader('Content-Type', 'application/json'); res.end('{"a":1}'); return; }
    res.setHeader('Content-Type', 'text/html');
    res.setHeader('Set-Cookie', 'sid=s3cr3t; HttpOnly');
    res.end(`<html><body><h1>Test</h1><button id="b" onclick="document.querySelector('#out').textContent='clicked'">Go</button>
      <div id="out"></div><input id="t"><input id="f" type="file"><a id="d" href="/file">dl</a>
      <script>fetch('/api')</script></body></html>`);
  });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}
