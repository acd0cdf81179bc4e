// Puppeteer (puppeteer-core: it never downloads a browser) attaches to scry
// over CDP, clicks a button on the test page and reads the DOM.
//
//   header: connect({ browserURL, headers }): puppeteer-core sends
//           `headers` with its /json/version request and on the WebSocket
//           (since 25.5.0; 24.x sent them on neither);
//   query:  connect({ browserURL }) cannot carry the token: Puppeteer
//           resolves "/json/version" against browserURL, which drops the
//           query. So the script asks /json/version?token= itself and
//           connects to the browserWSEndpoint it is handed, which carries
//           the token;
//   none:   connect({ browserURL }), the way most scripts do.
import puppeteer from 'puppeteer-core';
import { auth, authHeaders, withQueryToken, cdpURL, pageURL, run } from './common.mjs';

async function wsEndpoint() {
  const res = await fetch(withQueryToken(new URL('/json/version', cdpURL).toString()));
  if (!res.ok) throw new Error(`GET /json/version: HTTP ${res.status}: ${(await res.text()).trim()}`);
  return (await res.json()).webSocketDebuggerUrl;
}

await run('puppeteer', async () => {
  const browser = auth === 'query'
    ? await puppeteer.connect({ browserWSEndpoint: await wsEndpoint(), protocolTimeout: 30_000 })
    : await puppeteer.connect({ browserURL: cdpURL, headers: authHeaders(), protocolTimeout: 30_000 });
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
