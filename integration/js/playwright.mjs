// Playwright (playwright-core: it never downloads a browser) attaches to
// scry over CDP, clicks a button on the test page and reads the DOM.
//
// connectOverCDP sends `headers` with the /json/version discovery request
// and the WebSocket, and keeps a ?token= query when it builds the
// discovery URL, so both ways of presenting the token work.
import { chromium } from 'playwright-core';
import { authHeaders, withQueryToken, cdpURL, pageURL, run } from './common.mjs';

await run('playwright', async () => {
  const browser = await chromium.connectOverCDP(withQueryToken(cdpURL), { headers: authHeaders(), timeout: 30_000 });
  try {
    const context = browser.contexts()[0] ?? (await browser.newContext());
    const page = await context.newPage();
    await page.goto(pageURL);
    await page.click('#b');
    const text = await page.textContent('#out');
    await page.close();
    return text;
  } finally {
    // Over CDP, close() only disconnects: the browser is scry's.
    await browser.close();
  }
});
