// Puppeteer (puppeteer-core: it never downloads a browser) attaches to scry
// over CDP, clicks a button on the test page and reads the DOM.
//
// puppeteer.connect({ browserURL, headers }) does not send `headers` with
// its /json/version request, and it drops a ?token= query from browserURL
// (it resolves "/json/version" against it). So with a token the script
// asks /json/version itself, with the token, and connects to the
// browserWSEndpoint it is handed:
//   header: Authorization header on discovery and on the WebSocket (the
//           token is stripped from the handed-out URL to prove the header
//           alone is enough);
//   query:  ?token= on discovery; the handed-out URL already carries it.
// Without a token it uses browserURL, the way most scripts do.
import puppeteer from 'puppeteer-core';
import { auth, authHeaders, withQueryToken, cdpURL, pageURL, run } from './common.mjs';

async function wsEndpoint() {
  const res = await fetch(withQueryToken(new URL('/json/version', cdpURL).toString()), { headers: authHeaders() });
  if (!res.ok) throw new Error(`GET /json/version: HTTP ${res.status}: ${(await res.text()).trim()}`);
  const ws = new URL((await res.json()).webSocketDebuggerUrl);
  if (auth === 'header') ws.searchParams.delete('token');
  return ws.toString();
}

await run('puppeteer', async () => {
  const browser = auth === 'none'
    ? await puppeteer.connect({ browserURL: cdpURL, protocolTimeout: 30_000 })
    : await puppeteer.connect({ browserWSEndpoint: await wsEndpoint(), headers: authHeaders(), protocolTimeout: 30_000 });
  try {
    const page = await browser.newPage();
    await page.goto(pageURL);
    await page.click('#b');
    const text = await page.$eval('#out', (e) => e.textContent);
    await page.close();
    return text;
  } finally {
    await browser.disconnect();
  }
});
