// Package cdprole decides what a scoped CDP token may send, and hides
// cookie values from what it receives. It does no I/O: the bridge
// (internal/cdpproxy) reads each command out of the client's WebSocket
// frames, asks Peek and Policy.Check, forwards the command or answers with
// ErrorReply, and passes browser events through Redact.
//
// Roles: Admin is never filtered. Agent drives pages (navigation to http,
// https, data and about:blank; input; screenshots; DOM; accessibility;
// Runtime in pages; network observation; interception; downloads into the
// download directory, uploads from it) but cannot read or write the
// profile's cookie jar and storage, open file: or chrome: URLs, close or
// crash the browser, touch extensions, or give page JavaScript a CDP
// binding. Observer only reads: screenshots, DOM, accessibility, target
// lists, redacted network events. The rules are allow-lists of exact
// method names (methods.go), so a method Chromium adds later is refused
// until someone reviews it. Commands inside Target.sendMessageToTarget are
// checked by the same rules; a wrapper inside a wrapper is refused.
//
// Peek reads a command as Chrome does: exact, case-sensitive, unescaped
// keys; a duplicate key at the top level or in params is refused, as is a
// checked string that is not valid UTF-8, so scry and Chrome cannot read
// different methods or URLs out of one message. Values scry does not check
// (typed text, passwords) are skipped, never copied.
//
// Redaction: an agent or observer may watch the network, but Chromium's
// raw-header events carry cookie values, HttpOnly ones included. Redact
// replaces with "(redacted by scry)": Cookie and Set-Cookie header values
// (any case, in header maps and [{name, value}] lists), the Cookie: and
// Set-Cookie: lines of headersText and requestHeadersText, the value of
// every cookie object (associatedCookies, blockedCookies, exemptedCookies),
// cookieLine and rawCookieLine. The events it is meant for
// (MayCarryCookies): Network.requestWillBeSent, requestWillBeSentExtraInfo,
// responseReceived, responseReceivedExtraInfo, responseReceivedEarlyHints,
// signedExchangeReceived, webSocketWillSendHandshakeRequest,
// webSocketHandshakeResponseReceived, requestIntercepted,
// Fetch.requestPaused, Fetch.authRequired, Audits.issueAdded, and
// Target.receivedMessageFromTarget (a non-flat session's events, redacted
// inside). Response bodies (Network.getResponseBody) are page content and
// are not touched. What stays readable is what page JavaScript can read:
// document.cookie without HttpOnly cookies, localStorage.
package cdprole
