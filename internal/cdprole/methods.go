package cdprole

// The role tables are allow-lists of exact method names: a method Chromium
// adds later is refused to scoped roles until someone reviews it and adds it
// here. Every name is checked against Chromium's protocol in the tests
// (testdata/protocol-methods.txt, scripts/protocol-methods.sh).
//
// The lists were checked against what Playwright 1.65, Puppeteer 25,
// chrome-devtools-mcp 1.11 and chromedp 0.23 send (clients_test.go). Methods
// those clients send that stay refused for agent, and the flow each breaks:
//   - Storage.getCookies/setCookies/clearCookies: Playwright
//     context.cookies()/addCookies()/clearCookies(); Puppeteer
//     browser.cookies()/setCookie(). Network.getCookies/setCookies/
//     deleteCookies: Puppeteer page.cookies()/setCookie()/deleteCookie(),
//     chrome-devtools-mcp's cookie handling. Exporting or replacing the jar is
//     what the agent role exists to prevent.
//   - Network.loadNetworkResource: Playwright's response.body() fallback for
//     responses Chromium kept no body of (prefetches); it loads any URL,
//     file: included, with the profile's cookies.
//   - Browser.close: Puppeteer browser.close() and chromedp's Cancel on a
//     browser it started (on a connected browser use disconnect()).
//   - Security.setIgnoreCertificateErrors: Playwright/Puppeteer contexts made
//     with ignoreHTTPSErrors / acceptInsecureCerts.
//   - Target.openDevTools, Target.getDevToolsTarget: Puppeteer/MCP with a
//     DevTools window; DevTools has every power of the protocol.
//   - Extensions.*: Puppeteer browser.installExtension() and friends.
//   - Autofill.*: Puppeteer elementHandle.autofill(); it reaches the profile's
//     saved addresses and cards.
//   - PWA.*, BluetoothEmulation.*, DeviceAccess.*, Memory.*,
//     Emulation.addScreen/removeScreen/getScreenInfos: special-purpose
//     Puppeteer APIs, not reviewed. Browser.setDockTile: Playwright, macOS
//     dock icon only.

// agentMethods: an agent drives pages. It may do what page JavaScript can do
// and what a person at the screen can do, not read or write the profile's
// cookie jar and storage, open local files or change the browser.
var agentMethods = []string{
	// Accessibility: snapshots (Playwright MCP, chrome-devtools-mcp, Puppeteer).
	"Accessibility.disable",
	"Accessibility.enable",
	"Accessibility.getAXNodeAndAncestors",
	"Accessibility.getChildAXNodes",
	"Accessibility.getFullAXTree",
	"Accessibility.getPartialAXTree",
	"Accessibility.getRootAXNode",
	"Accessibility.queryAXTree",

	// Animation: page-local playback control (Puppeteer).
	"Animation.disable",
	"Animation.enable",
	"Animation.getPlaybackRate",
	"Animation.setPlaybackRate",

	// Audits: issue reporting of the page (Puppeteer enables it).
	"Audits.disable",
	"Audits.enable",

	// Browser: version and window geometry; permissions for the agent's
	// origins; downloads only into DownloadDir (setDownloadBehavior is
	// rewritten by Check). Not close/crash/executeBrowserCommand.
	"Browser.cancelDownload",
	"Browser.getVersion",
	"Browser.getWindowBounds",
	"Browser.getWindowForTarget",
	"Browser.grantPermissions",
	"Browser.resetPermissions",
	"Browser.setContentsSize",
	"Browser.setDownloadBehavior",
	"Browser.setPermission",
	"Browser.setWindowBounds",

	// CSS: reads, coverage and style edits of the page.
	"CSS.addRule",
	"CSS.collectClassNames",
	"CSS.createStyleSheet",
	"CSS.disable",
	"CSS.enable",
	"CSS.forcePseudoState",
	"CSS.getBackgroundColors",
	"CSS.getComputedStyleForNode",
	"CSS.getInlineStylesForNode",
	"CSS.getMatchedStylesForNode",
	"CSS.getMediaQueries",
	"CSS.getPlatformFontsForNode",
	"CSS.getStyleSheetText",
	"CSS.setStyleSheetText",
	"CSS.setStyleTexts",
	"CSS.startRuleUsageTracking",
	"CSS.stopRuleUsageTracking",
	"CSS.takeCoverageDelta",

	// DOM: reads and the writes clients use; setFileInputFiles only with
	// files inside DownloadDir (Check).
	"DOM.describeNode",
	"DOM.disable",
	"DOM.discardSearchResults",
	"DOM.enable",
	"DOM.focus",
	"DOM.getAttributes",
	"DOM.getBoxModel",
	"DOM.getContentQuads",
	"DOM.getDocument",
	"DOM.getFlattenedDocument",
	"DOM.getFrameOwner",
	"DOM.getNodeForLocation",
	"DOM.getOuterHTML",
	"DOM.getSearchResults",
	"DOM.performSearch",
	"DOM.pushNodeByPathToFrontend",
	"DOM.pushNodesByBackendIdsToFrontend",
	"DOM.querySelector",
	"DOM.querySelectorAll",
	"DOM.removeAttribute",
	"DOM.removeNode",
	"DOM.requestChildNodes",
	"DOM.requestNode",
	"DOM.resolveNode",
	"DOM.scrollIntoViewIfNeeded",
	"DOM.setAttributeValue",
	"DOM.setAttributesAsText",
	"DOM.setFileInputFiles",
	"DOM.setNodeValue",
	"DOM.setOuterHTML",

	// DOMDebugger: event listener listing (chrome-devtools-mcp).
	"DOMDebugger.getEventListeners",

	// DOMSnapshot: layout snapshots of the page.
	"DOMSnapshot.captureSnapshot",
	"DOMSnapshot.disable",
	"DOMSnapshot.enable",

	// Debugger: what Playwright's and Puppeteer's JS coverage need. Page JS
	// only, no more than Runtime.evaluate gives.
	"Debugger.disable",
	"Debugger.enable",
	"Debugger.getScriptSource",
	"Debugger.resume",
	// chrome-devtools-mcp sets these up on every page: where to stop and
	// which scripts to skip, no code run.
	"Debugger.setAsyncCallStackDepth",
	"Debugger.setBlackboxExecutionContexts",
	"Debugger.setBlackboxPatterns",
	"Debugger.setPauseOnExceptions",
	"Debugger.setSkipAllPauses",

	// Emulation: per-page device, media, locale, time zone and CPU emulation.
	"Emulation.clearDeviceMetricsOverride",
	"Emulation.clearGeolocationOverride",
	"Emulation.clearIdleOverride",
	"Emulation.setCPUThrottlingRate",
	"Emulation.setDefaultBackgroundColorOverride",
	"Emulation.setDeviceMetricsOverride",
	"Emulation.setEmulatedMedia",
	"Emulation.setEmulatedVisionDeficiency",
	"Emulation.setFocusEmulationEnabled",
	"Emulation.setGeolocationOverride",
	"Emulation.setIdleOverride",
	"Emulation.setLocaleOverride",
	"Emulation.setScriptExecutionDisabled",
	"Emulation.setTimezoneOverride",
	"Emulation.setTouchEmulationEnabled",
	"Emulation.setUserAgentOverride",

	// Fetch: request interception (Playwright page.route, Puppeteer
	// setRequestInterception). Fetch.requestPaused events are redacted.
	"Fetch.continueRequest",
	"Fetch.continueResponse",
	"Fetch.continueWithAuth",
	"Fetch.disable",
	"Fetch.enable",
	"Fetch.failRequest",
	"Fetch.fulfillRequest",
	"Fetch.getResponseBody",
	"Fetch.takeResponseBodyAsStream",

	// HeapProfiler: GC and heap snapshots of page JS (Playwright requestGC,
	// Puppeteer/MCP heap snapshots). The renderer never holds HttpOnly cookies.
	"HeapProfiler.collectGarbage",
	"HeapProfiler.disable",
	"HeapProfiler.enable",
	"HeapProfiler.takeHeapSnapshot",

	// IO: reading the streams printToPDF, Fetch and Tracing return.
	"IO.close",
	"IO.read",

	// Input: what a person at the screen does (refused while a person has
	// control). Not setIgnoreInputEvents: it would lock the person out.
	"Input.cancelDragging",
	"Input.dispatchDragEvent",
	"Input.dispatchKeyEvent",
	"Input.dispatchMouseEvent",
	"Input.dispatchTouchEvent",
	"Input.emulateTouchFromMouseEvent",
	"Input.imeSetComposition",
	"Input.insertText",
	"Input.setInterceptDrags",
	"Input.synthesizePinchGesture",
	"Input.synthesizeScrollGesture",
	"Input.synthesizeTapGesture",

	// Inspector: detach/crash notifications (chromedp).
	"Inspector.disable",
	"Inspector.enable",

	// Log: console and browser log entries of the page.
	"Log.clear",
	"Log.disable",
	"Log.enable",
	"Log.startViolationsReport",
	"Log.stopViolationsReport",

	// Network: observation (events are redacted of cookie values), response
	// bodies (page content), headers and conditions the agent sets. Not the
	// cookie methods, not loadNetworkResource.
	"Network.clearBrowserCache",
	"Network.disable",
	"Network.emulateNetworkConditions",
	"Network.emulateNetworkConditionsByRule",
	"Network.enable",
	"Network.getRequestPostData",
	"Network.getResponseBody",
	"Network.overrideNetworkState",
	"Network.searchInResponseBody",
	"Network.setAttachDebugStack",
	"Network.setBlockedURLs",
	"Network.setBypassServiceWorker",
	"Network.setCacheDisabled",
	"Network.setExtraHTTPHeaders",
	"Network.setUserAgentOverride",

	// Overlay: highlighting for screenshots and debugging.
	"Overlay.disable",
	"Overlay.enable",
	"Overlay.hideHighlight",
	"Overlay.highlightNode",
	"Overlay.highlightQuad",
	"Overlay.highlightRect",

	// Page: navigation (URL checked), lifecycle, frames, scripts, screenshots,
	// screencast, PDF, dialogs, file chooser interception, downloads
	// (rewritten). Not crash.
	"Page.addScriptToEvaluateOnNewDocument",
	"Page.bringToFront",
	"Page.captureScreenshot",
	"Page.captureSnapshot",
	"Page.close",
	"Page.createIsolatedWorld",
	"Page.disable",
	"Page.enable",
	"Page.getAppManifest",
	"Page.getFrameTree",
	"Page.getLayoutMetrics",
	"Page.getNavigationHistory",
	"Page.getResourceContent",
	"Page.getResourceTree",
	"Page.handleJavaScriptDialog",
	"Page.navigate",
	"Page.navigateToHistoryEntry",
	"Page.printToPDF",
	"Page.reload",
	"Page.removeScriptToEvaluateOnNewDocument",
	"Page.resetNavigationHistory",
	"Page.screencastFrameAck",
	"Page.setBypassCSP",
	"Page.setDocumentContent",
	"Page.setDownloadBehavior",
	"Page.setFontFamilies",
	"Page.setFontSizes",
	"Page.setInterceptFileChooserDialog",
	"Page.setLifecycleEventsEnabled",
	"Page.setWebLifecycleState",
	"Page.startScreenRecording",
	"Page.startScreencast",
	"Page.stopLoading",
	"Page.stopScreenRecording",
	"Page.stopScreencast",

	// Performance: page metrics.
	"Performance.disable",
	"Performance.enable",
	"Performance.getMetrics",
	"PerformanceTimeline.enable",

	// Profiler: JS coverage and CPU profiles of the page.
	"Profiler.disable",
	"Profiler.enable",
	"Profiler.getBestEffortCoverage",
	"Profiler.setSamplingInterval",
	"Profiler.start",
	"Profiler.startPreciseCoverage",
	"Profiler.stop",
	"Profiler.stopPreciseCoverage",
	"Profiler.takePreciseCoverage",

	// Runtime: JavaScript in pages; it reaches what page JS reaches
	// (document.cookie without HttpOnly cookies, localStorage).
	"Runtime.addBinding",
	"Runtime.awaitPromise",
	"Runtime.callFunctionOn",
	"Runtime.compileScript",
	"Runtime.disable",
	"Runtime.discardConsoleEntries",
	"Runtime.enable",
	"Runtime.evaluate",
	"Runtime.getExceptionDetails",
	"Runtime.getHeapUsage",
	"Runtime.getIsolateId",
	"Runtime.getProperties",
	"Runtime.globalLexicalScopeNames",
	"Runtime.queryObjects",
	"Runtime.releaseObject",
	"Runtime.releaseObjectGroup",
	"Runtime.removeBinding",
	"Runtime.runIfWaitingForDebugger",
	"Runtime.runScript",
	"Runtime.setAsyncCallStackDepth",
	"Runtime.setCustomObjectFormatterEnabled",
	"Runtime.setMaxCallStackSizeToCapture",
	"Runtime.terminateExecution",

	// Schema, Security, SystemInfo: reads. Not setIgnoreCertificateErrors.
	"Schema.getDomains",
	"Security.disable",
	"Security.enable",
	"SystemInfo.getFeatureState",
	"SystemInfo.getInfo",
	"SystemInfo.getProcessInfo",

	// Storage: only the frame's storage key (chrome-devtools-mcp asks it
	// for every frame); nothing that reads or clears what is stored.
	"Storage.getStorageKey",

	// Target: discovery, attach (commands on every session are checked the
	// same way), tabs (createTarget URL checked), browser contexts.
	// Not exposeDevToolsProtocol (page JS would get an unchecked CDP binding),
	// setRemoteLocations, openDevTools.
	"Target.activateTarget",
	"Target.attachToBrowserTarget",
	"Target.attachToTarget",
	"Target.autoAttachRelated",
	"Target.closeTarget",
	"Target.createBrowserContext",
	"Target.createTarget",
	"Target.detachFromTarget",
	"Target.disposeBrowserContext",
	"Target.getBrowserContexts",
	"Target.getTargetInfo",
	"Target.getTargets",
	"Target.sendMessageToTarget",
	"Target.setAutoAttach",
	"Target.setDiscoverTargets",

	// Tracing: performance traces (chrome-devtools-mcp performance tools,
	// Puppeteer page.tracing, Playwright browser.startTracing). Traces return
	// as events or an IO stream, never a file; Check refuses netlog
	// categories, perfetto configs and the system backend.
	"Tracing.end",
	"Tracing.getCategories",
	"Tracing.recordClockSyncMarker",
	"Tracing.start",

	// WebMCP: tools a page declares for agents; invoking one runs page
	// JavaScript. Puppeteer enables it on every page (a refusal would be
	// logged and counted for each).
	"WebMCP.cancelInvocation",
	"WebMCP.disable",
	"WebMCP.enable",
	"WebMCP.invokeTool",
}

// observerMethods: read-only. It sees pages (screenshots, DOM,
// accessibility, target lists, redacted network events); it cannot type,
// click, navigate, emulate, intercept or run JavaScript.
var observerMethods = []string{
	"Accessibility.disable",
	"Accessibility.enable",
	"Accessibility.getAXNodeAndAncestors",
	"Accessibility.getChildAXNodes",
	"Accessibility.getFullAXTree",
	"Accessibility.getPartialAXTree",
	"Accessibility.getRootAXNode",
	"Accessibility.queryAXTree",

	"Browser.getVersion",

	// CSS reads.
	"CSS.disable",
	"CSS.enable",
	"CSS.getComputedStyleForNode",
	"CSS.getInlineStylesForNode",
	"CSS.getMatchedStylesForNode",
	"CSS.getStyleSheetText",

	// DOM reads.
	"DOM.describeNode",
	"DOM.disable",
	"DOM.enable",
	"DOM.getAttributes",
	"DOM.getBoxModel",
	"DOM.getContentQuads",
	"DOM.getDocument",
	"DOM.getFlattenedDocument",
	"DOM.getFrameOwner",
	"DOM.getNodeForLocation",
	"DOM.getOuterHTML",
	"DOM.querySelector",
	"DOM.querySelectorAll",
	"DOM.requestChildNodes",

	// Not DOMSnapshot.captureSnapshot (its inputValue holds what is typed
	// into fields, passwords included) nor Network.enable (requests carry
	// login forms' POST bodies): an observer watches, it does not read
	// what a person types.

	"Log.disable",
	"Log.enable",

	// Page reads; Page.enable only turns on events.
	"Page.captureScreenshot",
	"Page.disable",
	"Page.enable",
	"Page.getFrameTree",
	"Page.getLayoutMetrics",
	"Page.getNavigationHistory",
	"Page.setLifecycleEventsEnabled",

	// Runtime: events and resuming targets paused at start (auto-attach);
	// no evaluate, no callFunctionOn.
	"Runtime.enable",
	"Runtime.runIfWaitingForDebugger",

	// Target: lists and sessions.
	"Target.attachToBrowserTarget",
	"Target.attachToTarget",
	"Target.detachFromTarget",
	"Target.getBrowserContexts",
	"Target.getTargetInfo",
	"Target.getTargets",
	"Target.sendMessageToTarget",
	"Target.setAutoAttach",
	"Target.setDiscoverTargets",
}

// refusedMethods are refused to scoped roles (they are on no allow-list) but
// named here so metrics and audit lines show them, not "other".
var refusedMethods = []string{
	"Autofill.trigger",
	"Browser.close",
	"Browser.crash",
	"Browser.crashGpuProcess",
	"Browser.executeBrowserCommand",
	"Browser.getBrowserCommandLine",
	"CacheStorage.deleteCache",
	"CacheStorage.deleteEntry",
	"CacheStorage.requestCacheNames",
	"CacheStorage.requestCachedResponse",
	"CacheStorage.requestEntries",
	"DOMStorage.clear",
	"DOMStorage.enable",
	"DOMStorage.getDOMStorageItems",
	"DOMStorage.removeDOMStorageItem",
	"DOMStorage.setDOMStorageItem",
	"Extensions.clearStorageItems",
	"Extensions.getExtensions",
	"Extensions.getStorageItems",
	"Extensions.loadUnpacked",
	"Extensions.removeStorageItems",
	"Extensions.setStorageItems",
	"Extensions.triggerAction",
	"Extensions.uninstall",
	"HeadlessExperimental.beginFrame",
	"HeadlessExperimental.enable",
	"IndexedDB.clearObjectStore",
	"IndexedDB.deleteDatabase",
	"IndexedDB.enable",
	"IndexedDB.requestData",
	"IndexedDB.requestDatabase",
	"IndexedDB.requestDatabaseNames",
	"Input.setIgnoreInputEvents",
	"Memory.getBrowserSamplingProfile",
	"Network.clearBrowserCookies",
	"Network.deleteCookies",
	"Network.getAllCookies",
	"Network.getCookies",
	"Network.loadNetworkResource",
	"Network.setCookie",
	"Network.setCookieControls",
	"Network.setCookies",
	"Page.crash",
	"Page.deleteCookie",
	"Security.handleCertificateError",
	"Security.setIgnoreCertificateErrors",
	"Security.setOverrideCertificateErrors",
	"ServiceWorker.unregister",
	"Storage.clearCookies",
	"Storage.clearDataForOrigin",
	"Storage.clearDataForStorageKey",
	"Storage.getCookies",
	"Storage.getUsageAndQuota",
	"Storage.setCookies",
	"Target.exposeDevToolsProtocol",
	"Target.getDevToolsTarget",
	"Target.openDevTools",
	"Target.setRemoteLocations",
}

var (
	agentAllowed    = toSet(agentMethods)
	observerAllowed = toSet(observerMethods)
	knownMethods    = toSet(agentMethods, observerMethods, refusedMethods)
)

func toSet(lists ...[]string) map[string]struct{} {
	m := make(map[string]struct{})
	for _, l := range lists {
		for _, s := range l {
			m[s] = struct{}{}
		}
	}
	return m
}

// allowed reports whether r may send method at all (before the per-method
// checks in Check).
func allowed(r Role, method string) bool {
	var set map[string]struct{}
	switch r {
	case Admin:
		return true
	case Agent:
		set = agentAllowed
	case Observer:
		set = observerAllowed
	default:
		return false
	}
	_, ok := set[method]
	return ok
}

// MethodLabel is method if it is in this package's known list (allowed or
// refused, any role), else "other": it bounds metric cardinality.
func MethodLabel(method string) string {
	if _, ok := knownMethods[method]; ok {
		return method
	}
	return "other"
}
