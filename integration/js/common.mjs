// Shared plumbing for the client scripts the Go integration tests run.
//
// Environment:
//   SCRY_CDP_URL   scry's agent door, http://127.0.0.1:PORT
//   SCRY_TOKEN     the CDP token (may be empty)
//   SCRY_AUTH      header | query | none: how the script presents the token
//   SCRY_PAGE_URL  a page with a button #b that sets #out to "clicked"
//
// A script prints one JSON line, {"client", "auth", "ok", "text" | "error"},
// and exits 0 when it drove the page, 1 when it could not.

export const cdpURL = process.env.SCRY_CDP_URL;
export const token = process.env.SCRY_TOKEN ?? '';
export const auth = process.env.SCRY_AUTH ?? 'header';
export const pageURL = process.env.SCRY_PAGE_URL;

if (!cdpURL || !pageURL || !['header', 'query', 'none'].includes(auth)) {
  console.error('usage: SCRY_CDP_URL=http://host:port SCRY_PAGE_URL=... SCRY_AUTH=header|query|none [SCRY_TOKEN=...] node SCRIPT');
  process.exit(2);
}

// authHeaders is the Authorization header when the token goes in a header.
export function authHeaders() {
  return auth === 'header' ? { Authorization: `Bearer ${token}` } : {};
}

// withQueryToken adds ?token= to url when the token goes in the URL.
export function withQueryToken(url) {
  if (auth !== 'query') return url;
  const u = new URL(url);
  u.searchParams.set('token', token);
  return u.toString();
}

// run drives the page with fn and reports, never hanging: the whole run
// has a deadline.
export async function run(client, fn) {
  const timer = setTimeout(() => {
    console.log(JSON.stringify({ client, auth, ok: false, error: 'timed out after 60s' }));
    process.exit(3);
  }, 60_000);
  try {
    const text = await fn();
    console.log(JSON.stringify({ client, auth, ok: true, text }));
    clearTimeout(timer);
    process.exit(0);
  } catch (e) {
    console.log(JSON.stringify({ client, auth, ok: false, error: String(e?.message ?? e) }));
    clearTimeout(timer);
    process.exit(1);
  }
}
