// Playwright and Puppeteer driving scry with a scoped (agent) token, the
// way an agent's code does, for the scoped-token tests
// (integration/scoped_clients_test.go).
//
//   SCRY_CLIENT  playwright | puppeteer
//   SCRY_FLOW    drive:    new page, route one request (Playwright), goto,
//                          fill/type into #name, click #b, wait for #out,
//                          screenshot, evaluate, close the page;
//                cookies:  try to export and import the cookie jar (each
//                          attempt must fail), then navigate and evaluate
//                          on the same connection;
//                password: type SCRY_SECRET into the password field #pw
//                          and check that the page got it.
//   SCRY_SECRET  the text the password flow types
//
// SCRY_CDP_URL, SCRY_TOKEN, SCRY_AUTH and SCRY_PAGE_URL as for the other
// scripts (common.mjs). The page is the test's scopedSite: #name, #pw, a
// button #b whose click writes "clicked:<name>:<body of /data>" into #out.
//
// "text" is a JSON object of what the flow saw; "ok" is false when a step
// threw (its message in "error").
import puppeteer from 'puppeteer-core';
import { chromium } from 'playwright-core';
import { authHeaders, cdpURL, pageURL, run } from './common.mjs';

const client = process.env.SCRY_CLIENT;
const flow = process.env.SCRY_FLOW;
const secret = process.env.SCRY_SECRET ?? '';

// attempt runs fn and says how it failed: the cookie calls must throw.
async function attempt(fn) {
  try {
    const v = await fn();
    return { ok: true, returned: Array.isArray(v) ? `${v.length} items` : typeof v };
  } catch (e) {
    return { ok: false, error: String(e?.message ?? e) };
  }
}

const isPNG = (buf) => buf.length > 8 && buf.subarray(1, 4).toString() === 'PNG';

async function playwright() {
  const browser = await chromium.connectOverCDP(cdpURL, { headers: authHeaders(), timeout: 30_000 });
  try {
    const context = browser.contexts()[0] ?? (await browser.newContext());
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    const seen = {};
    if (flow === 'drive') {
      let routed = 0;
      await page.route('**/data', (route) => {
        routed++;
        return route.fulfill({ status: 200, contentType: 'text/plain', body: 'routed' });
      });
      await page.goto(pageURL);
      await page.fill('#name', 'play');
      await page.locator('#name').pressSequentially('wright');
      await page.click('#b');
      await page.waitForFunction(() => document.querySelector('#out').textContent !== 'waiting');
      seen.out = await page.textContent('#out');
      seen.routed = routed;
      seen.png = isPNG(await page.screenshot());
      seen.evaluated = await page.evaluate(() => 6 * 7);
    } else if (flow === 'cookies') {
      await page.goto(pageURL);
      seen.cookies = await attempt(() => context.cookies());
      seen.addCookies = await attempt(() => context.addCookies([{ name: 'planted', value: 'x', url: pageURL }]));
      await page.goto(pageURL + '?after');
      seen.after = await page.evaluate(() => location.search + ' ' + (6 * 7));
    } else if (flow === 'password') {
      await page.goto(pageURL);
      await page.fill('#pw', secret);
      seen.typed = await page.evaluate((s) => document.querySelector('#pw').value === s, secret);
    } else {
      throw new Error(`unknown SCRY_FLOW ${flow}`);
    }
    await page.close();
    return JSON.stringify(seen);
  } finally {
    await browser.close(); // over CDP: disconnects only
  }
}

async function puppeteerFlow() {
  const browser = await puppeteer.connect({ browserURL: cdpURL, headers: authHeaders(), protocolTimeout: 30_000 });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(30_000);
    const seen = {};
    if (flow === 'drive') {
      await page.goto(pageURL);
      await page.type('#name', 'puppeteer');
      await page.click('#b');
      await page.waitForFunction(() => document.querySelector('#out').textContent !== 'waiting');
      seen.out = await page.$eval('#out', (e) => e.textContent);
      seen.png = isPNG(Buffer.from(await page.screenshot()));
      seen.evaluated = await page.evaluate(() => 6 * 7);
    } else if (flow === 'cookies') {
      await page.goto(pageURL);
      seen.pageCookies = await attempt(() => page.cookies());
      seen.browserCookies = await attempt(() => browser.cookies());
      seen.setCookie = await attempt(() => browser.setCookie({ name: 'planted', value: 'x', domain: new URL(pageURL).hostname, path: '/' }));
      await page.goto(pageURL + '?after');
      seen.after = await page.evaluate(() => location.search + ' ' + (6 * 7));
    } else if (flow === 'password') {
      await page.goto(pageURL);
      await page.type('#pw', secret);
      seen.typed = await page.evaluate((s) => document.querySelector('#pw').value === s, secret);
    } else {
      throw new Error(`unknown SCRY_FLOW ${flow}`);
    }
    await page.close();
    return JSON.stringify(seen);
  } finally {
    await browser.disconnect();
  }
}

if (client === 'playwright') {
  await run(client, playwright);
} else if (client === 'puppeteer') {
  await run(client, puppeteerFlow);
} else {
  console.error(`unknown SCRY_CLIENT ${client}`);
  process.exit(2);
}
