// Connects a real client to scry's stable WebSocket endpoint, ws://host:port/,
// which stays the same across Chromium restarts, then clicks a button on
// the test page and reads the DOM.
//
//   SCRY_CLIENT=puppeteer   connect({ browserWSEndpoint: 'ws://host:port/?token=T' })
//   SCRY_CLIENT=playwright  connectOverCDP('ws://host:port/', { headers: { Authorization } })
//
// SCRY_WS_URL is ws://host:port/ (without the token); SCRY_TOKEN, SCRY_PAGE_URL
// as for the other scripts (SCRY_CDP_URL and SCRY_AUTH are not used).
import puppeteer from 'puppeteer-core';
import { chromium } from 'playwright-core';

const client = process.env.SCRY_CLIENT;
const wsURL = process.env.SCRY_WS_URL;
const token = process.env.SCRY_TOKEN ?? '';
const pageURL = process.env.SCRY_PAGE_URL;

function report(ok, field, code) {
  console.log(JSON.stringify({ client, auth: client === 'puppeteer' ? 'query' : 'header', ok, ...field }));
  process.exit(code);
}
setTimeout(() => report(false, { error: 'timed out after 60s' }, 3), 60_000).unref();

async function drive(page, textOf) {
  await page.goto(pageURL);
  await page.click('#b');
  const text = await textOf(page);
  await page.close();
  return text;
}

try {
  let text;
  if (client === 'puppeteer') {
    const u = new URL(wsURL);
    u.searchParams.set('token', token);
    const browser = await puppeteer.connect({ browserWSEndpoint: u.toString(), protocolTimeout: 30_000 });
    try {
      text = await drive(await browser.newPage(), (p) => p.$eval('#out', (e) => e.textContent));
    } finally {
      await browser.disconnect();
    }
  } else if (client === 'playwright') {
    const browser = await chromium.connectOverCDP(wsURL, { headers: { Authorization: `Bearer ${token}` }, timeout: 30_000 });
    try {
      const context = browser.contexts()[0] ?? (await browser.newContext());
      text = await drive(await context.newPage(), (p) => p.textContent('#out'));
    } finally {
      await browser.close(); // over CDP: disconnects only
    }
  } else {
    report(false, { error: `unknown SCRY_CLIENT ${client}` }, 2);
  }
  report(true, { text }, 0);
} catch (e) {
  report(false, { error: String(e?.message ?? e) }, 1);
}
