package cdprole

import "testing"

// clientMethods are the CDP methods each real client sends (found by
// grepping playwright-core 1.65.1's chromium code, puppeteer-core 25.16.0's
// cdp code, chrome-devtools-mcp 1.11.0's own code over Puppeteer, and
// chromedp 0.23.0's calls into cdproto). Each must be allowed for Agent:
// these are the ordinary flows (connect, new page, navigate, click, type,
// screenshot, evaluate, accessibility snapshot, wait for network idle,
// route, download, upload, coverage, PDF, close page). Playwright MCP is
// Playwright's server over connectOverCDP: the Playwright list covers it.
var clientMethods = map[string][]string{
	"playwright": {
		"Browser.cancelDownload", "Browser.getVersion", "Browser.getWindowBounds",
		"Browser.getWindowForTarget", "Browser.grantPermissions", "Browser.resetPermissions",
		"Browser.setDownloadBehavior", "Browser.setWindowBounds", "CSS.disable", "CSS.enable",
		"CSS.getStyleSheetText", "CSS.startRuleUsageTracking", "CSS.stopRuleUsageTracking",
		"DOM.describeNode", "DOM.disable", "DOM.enable", "DOM.getBoxModel", "DOM.getContentQuads",
		"DOM.getFrameOwner", "DOM.resolveNode", "DOM.scrollIntoViewIfNeeded", "DOM.setFileInputFiles",
		"Debugger.disable", "Debugger.enable", "Debugger.getScriptSource", "Debugger.resume",
		"Debugger.setSkipAllPauses", "Emulation.setDefaultBackgroundColorOverride",
		"Emulation.setDeviceMetricsOverride", "Emulation.setEmulatedMedia",
		"Emulation.setFocusEmulationEnabled", "Emulation.setGeolocationOverride",
		"Emulation.setLocaleOverride", "Emulation.setScriptExecutionDisabled",
		"Emulation.setTimezoneOverride", "Emulation.setTouchEmulationEnabled",
		"Emulation.setUserAgentOverride", "Fetch.continueRequest", "Fetch.continueWithAuth",
		"Fetch.disable", "Fetch.enable", "Fetch.failRequest", "Fetch.fulfillRequest",
		"HeapProfiler.collectGarbage", "IO.close", "IO.read", "Input.dispatchDragEvent",
		"Input.dispatchKeyEvent", "Input.dispatchMouseEvent", "Input.dispatchTouchEvent",
		"Input.insertText", "Input.setInterceptDrags", "Inspector.enable", "Log.enable",
		"Network.clearBrowserCache", "Network.emulateNetworkConditions", "Network.enable",
		"Network.getResponseBody", "Network.setBypassServiceWorker", "Network.setCacheDisabled",
		"Network.setExtraHTTPHeaders", "Page.addScriptToEvaluateOnNewDocument", "Page.bringToFront",
		"Page.captureScreenshot", "Page.close", "Page.createIsolatedWorld", "Page.enable",
		"Page.getFrameTree", "Page.getLayoutMetrics", "Page.getNavigationHistory",
		"Page.handleJavaScriptDialog", "Page.navigate", "Page.navigateToHistoryEntry", "Page.printToPDF",
		"Page.reload", "Page.removeScriptToEvaluateOnNewDocument", "Page.screencastFrameAck",
		"Page.setBypassCSP", "Page.setFontFamilies", "Page.setInterceptFileChooserDialog",
		"Page.setLifecycleEventsEnabled", "Page.startScreencast", "Page.stopScreencast",
		"Profiler.disable", "Profiler.enable", "Profiler.startPreciseCoverage",
		"Profiler.stopPreciseCoverage", "Profiler.takePreciseCoverage", "Runtime.addBinding",
		"Runtime.callFunctionOn", "Runtime.disable", "Runtime.enable", "Runtime.evaluate",
		"Runtime.getProperties", "Runtime.releaseObject", "Runtime.runIfWaitingForDebugger",
		"Target.attachToBrowserTarget", "Target.attachToTarget", "Target.closeTarget",
		"Target.createBrowserContext", "Target.createTarget", "Target.detachFromTarget",
		"Target.disposeBrowserContext", "Target.getTargetInfo", "Target.setAutoAttach", "Tracing.end",
		"Tracing.start",
	},
	"puppeteer": {
		"Accessibility.getFullAXTree", "Accessibility.queryAXTree", "Animation.enable",
		"Animation.getPlaybackRate", "Animation.setPlaybackRate", "Audits.enable", "Browser.getVersion",
		"Browser.getWindowBounds", "Browser.getWindowForTarget", "Browser.grantPermissions",
		"Browser.resetPermissions", "Browser.setContentsSize", "Browser.setDownloadBehavior",
		"Browser.setPermission", "Browser.setWindowBounds", "CSS.disable", "CSS.enable",
		"CSS.getStyleSheetText", "CSS.startRuleUsageTracking", "CSS.stopRuleUsageTracking",
		"DOM.describeNode", "DOM.disable", "DOM.enable", "DOM.getFrameOwner", "DOM.resolveNode",
		"DOM.scrollIntoViewIfNeeded", "DOM.setFileInputFiles", "Debugger.disable", "Debugger.enable",
		"Debugger.getScriptSource", "Debugger.setSkipAllPauses", "Emulation.clearDeviceMetricsOverride",
		"Emulation.clearGeolocationOverride", "Emulation.clearIdleOverride",
		"Emulation.setCPUThrottlingRate", "Emulation.setDefaultBackgroundColorOverride",
		"Emulation.setDeviceMetricsOverride", "Emulation.setEmulatedMedia",
		"Emulation.setEmulatedVisionDeficiency", "Emulation.setFocusEmulationEnabled",
		"Emulation.setGeolocationOverride", "Emulation.setIdleOverride", "Emulation.setLocaleOverride",
		"Emulation.setScriptExecutionDisabled", "Emulation.setTimezoneOverride",
		"Emulation.setTouchEmulationEnabled", "Fetch.continueRequest", "Fetch.continueWithAuth",
		"Fetch.disable", "Fetch.enable", "Fetch.failRequest", "Fetch.fulfillRequest",
		"HeapProfiler.collectGarbage", "HeapProfiler.disable", "HeapProfiler.enable",
		"HeapProfiler.takeHeapSnapshot", "IO.close", "IO.read", "Input.dispatchDragEvent",
		"Input.dispatchKeyEvent", "Input.dispatchMouseEvent", "Input.dispatchTouchEvent",
		"Input.insertText", "Input.setInterceptDrags", "Log.enable",
		"Network.emulateNetworkConditionsByRule", "Network.enable", "Network.getRequestPostData",
		"Network.getResponseBody", "Network.overrideNetworkState", "Network.setBypassServiceWorker",
		"Network.setCacheDisabled", "Network.setExtraHTTPHeaders", "Network.setUserAgentOverride",
		"Page.addScriptToEvaluateOnNewDocument", "Page.bringToFront", "Page.captureScreenshot",
		"Page.close", "Page.createIsolatedWorld", "Page.enable", "Page.getFrameTree",
		"Page.getNavigationHistory", "Page.handleJavaScriptDialog", "Page.navigate",
		"Page.navigateToHistoryEntry", "Page.printToPDF", "Page.reload",
		"Page.removeScriptToEvaluateOnNewDocument", "Page.screencastFrameAck", "Page.setBypassCSP",
		"Page.setDocumentContent", "Page.setInterceptFileChooserDialog",
		"Page.setLifecycleEventsEnabled", "Page.startScreenRecording", "Page.startScreencast",
		"Page.stopScreenRecording", "Page.stopScreencast", "Performance.enable",
		"Performance.getMetrics", "Profiler.disable", "Profiler.enable", "Profiler.startPreciseCoverage",
		"Profiler.stopPreciseCoverage", "Profiler.takePreciseCoverage", "Runtime.addBinding",
		"Runtime.callFunctionOn", "Runtime.enable", "Runtime.evaluate", "Runtime.getProperties",
		"Runtime.queryObjects", "Runtime.releaseObject", "Runtime.removeBinding",
		"Runtime.runIfWaitingForDebugger", "Target.attachToTarget", "Target.closeTarget",
		"Target.createBrowserContext", "Target.createTarget", "Target.detachFromTarget",
		"Target.disposeBrowserContext", "Target.getBrowserContexts", "Target.getTargetInfo",
		"Target.setAutoAttach", "Target.setDiscoverTargets", "Tracing.end", "Tracing.start",
	},
	"chrome-devtools-mcp": {
		"Accessibility.getFullAXTree", "DOM.describeNode", "DOM.setFileInputFiles",
		"DOMDebugger.getEventListeners", "Emulation.setCPUThrottlingRate", "Emulation.setEmulatedMedia",
		"Emulation.setGeolocationOverride", "Emulation.setUserAgentOverride",
		"HeapProfiler.takeHeapSnapshot", "Input.dispatchKeyEvent", "Input.dispatchMouseEvent",
		"Input.insertText", "Network.emulateNetworkConditions", "Network.getRequestPostData",
		"Network.getResponseBody", "Page.bringToFront", "Page.captureScreenshot",
		"Page.handleJavaScriptDialog", "Page.navigate", "Page.navigateToHistoryEntry", "Page.reload",
		"Runtime.callFunctionOn", "Runtime.enable", "Runtime.evaluate", "Target.closeTarget",
		"Target.createTarget", "Target.getTargets", "Tracing.end", "Tracing.getCategories",
		"Tracing.start",
	},
	"chromedp": {
		"Browser.getVersion", "CSS.enable", "CSS.getComputedStyleForNode", "CSS.getMatchedStylesForNode",
		"DOM.discardSearchResults", "DOM.enable", "DOM.focus", "DOM.getBoxModel", "DOM.getContentQuads",
		"DOM.getDocument", "DOM.getSearchResults", "DOM.performSearch", "DOM.querySelector",
		"DOM.querySelectorAll", "DOM.removeAttribute", "DOM.requestChildNodes", "DOM.requestNode",
		"DOM.resolveNode", "DOM.scrollIntoViewIfNeeded", "DOM.setAttributeValue",
		"DOM.setAttributesAsText", "DOM.setFileInputFiles", "DOM.setNodeValue",
		"Emulation.setDeviceMetricsOverride", "Emulation.setTouchEmulationEnabled",
		"Emulation.setUserAgentOverride", "IO.close", "IO.read", "Input.dispatchDragEvent",
		"Input.dispatchKeyEvent", "Input.dispatchMouseEvent", "Input.dispatchTouchEvent",
		"Input.setInterceptDrags", "Inspector.enable", "Log.enable", "Network.enable",
		"Page.addScriptToEvaluateOnNewDocument", "Page.bringToFront", "Page.captureScreenshot",
		"Page.enable", "Page.getFrameTree", "Page.getLayoutMetrics", "Page.getNavigationHistory",
		"Page.navigate", "Page.navigateToHistoryEntry", "Page.printToPDF", "Page.reload",
		"Page.removeScriptToEvaluateOnNewDocument", "Page.setLifecycleEventsEnabled", "Page.stopLoading",
		"Runtime.addBinding", "Runtime.callFunctionOn", "Runtime.enable", "Runtime.evaluate",
		"Runtime.getProperties", "Runtime.releaseObject", "Runtime.releaseObjectGroup",
		"Runtime.removeBinding", "Target.activateTarget", "Target.attachToTarget", "Target.closeTarget",
		"Target.createBrowserContext", "Target.createTarget", "Target.detachFromTarget",
		"Target.disposeBrowserContext", "Target.getTargets", "Target.setAutoAttach",
		"Target.setDiscoverTargets",
	},
}

// clientRefused are methods those clients send that stay refused for
// Agent, with the flow each breaks (see methods.go).
var clientRefused = []struct{ client, method, flow string }{
	{"playwright", "Storage.getCookies", "context.cookies(), storageState()"},
	{"playwright", "Storage.setCookies", "context.addCookies()"},
	{"playwright", "Storage.clearCookies", "context.clearCookies()"},
	{"playwright", "Network.loadNetworkResource", "response.body() of a prefetch Chromium kept no body of"},
	{"playwright", "Security.setIgnoreCertificateErrors", "newContext({ignoreHTTPSErrors: true})"},
	{"playwright", "Browser.close", "browser.close() of a browser Playwright launched (connectOverCDP disconnects)"},
	{"playwright", "Browser.setDockTile", "macOS dock icon"},
	{"puppeteer", "Network.getCookies", "page.cookies()"},
	{"puppeteer", "Network.setCookies", "page.setCookie()"},
	{"puppeteer", "Network.deleteCookies", "page.deleteCookie()"},
	{"puppeteer", "Storage.getCookies", "browser.cookies()"},
	{"puppeteer", "Storage.setCookies", "browser.setCookie()"},
	{"puppeteer", "Browser.close", "browser.close() (browser.disconnect() works)"},
	{"puppeteer", "Security.setIgnoreCertificateErrors", "connect({acceptInsecureCerts: true})"},
	{"puppeteer", "Target.openDevTools", "page.openDevTools()"},
	{"puppeteer", "Extensions.loadUnpacked", "browser.installExtension()"},
	{"puppeteer", "Autofill.trigger", "elementHandle.autofill()"},
	{"chromedp", "Browser.close", "cancelling a browser chromedp started (a RemoteAllocator only disconnects)"},
}

func TestClientsOrdinaryFlowsAllowedForAgent(t *testing.T) {
	proto := protocolMethods(t)
	for client, methods := range clientMethods {
		for _, m := range methods {
			if !proto[m] {
				t.Errorf("%s: %s is not in Chromium's protocol", client, m)
			}
			if !allowed(Agent, m) {
				t.Errorf("%s sends %s in an ordinary flow, but it is not allowed for role agent", client, m)
			}
		}
	}
	for _, r := range clientRefused {
		if allowed(Agent, r.method) {
			t.Errorf("%s %s (%s) is documented as refused but allowed", r.client, r.method, r.flow)
		}
	}
}

// clientsSeen are the methods each client really sent in one ordinary flow
// against Chromium 156 (testdata/clients: connect, new page, route/request
// interception, navigate, wait for network idle, click, type, screenshot,
// evaluate, accessibility snapshot, upload, download, PDF, close page),
// read from Playwright's DEBUG=pw:protocol log, a hook on Puppeteer's
// Connection and chromedp's WithDebugf. All must be allowed for Agent.
var clientsSeen = map[string][]string{
	"playwright": {
		"Browser.getVersion", "Browser.setDownloadBehavior", "DOM.getContentQuads",
		"DOM.scrollIntoViewIfNeeded", "Emulation.setEmulatedMedia", "Emulation.setFocusEmulationEnabled",
		"Fetch.continueRequest", "Fetch.enable", "Fetch.failRequest", "Fetch.fulfillRequest", "IO.close",
		"IO.read", "Input.dispatchKeyEvent", "Input.dispatchMouseEvent", "Input.insertText",
		"Inspector.enable", "Log.enable", "Network.enable", "Network.setCacheDisabled",
		"Page.addScriptToEvaluateOnNewDocument", "Page.captureScreenshot", "Page.createIsolatedWorld",
		"Page.enable", "Page.getFrameTree", "Page.getLayoutMetrics", "Page.navigate", "Page.printToPDF",
		"Page.setFontFamilies", "Page.setLifecycleEventsEnabled", "Runtime.callFunctionOn",
		"Runtime.enable", "Runtime.evaluate", "Runtime.releaseObject", "Runtime.runIfWaitingForDebugger",
		"Target.closeTarget", "Target.createTarget", "Target.detachFromTarget", "Target.getTargetInfo",
		"Target.setAutoAttach",
	},
	"puppeteer": {
		"Accessibility.getFullAXTree", "Audits.enable", "DOM.describeNode", "DOM.resolveNode",
		"DOM.setFileInputFiles", "Emulation.setDeviceMetricsOverride",
		"Emulation.setTouchEmulationEnabled", "Fetch.continueRequest", "Fetch.enable",
		"Fetch.fulfillRequest", "IO.close", "IO.read", "Input.dispatchKeyEvent",
		"Input.dispatchMouseEvent", "Log.enable", "Network.enable", "Network.setCacheDisabled",
		"Page.addScriptToEvaluateOnNewDocument", "Page.captureScreenshot", "Page.createIsolatedWorld",
		"Page.enable", "Page.getFrameTree", "Page.navigate", "Page.printToPDF",
		"Page.setLifecycleEventsEnabled", "Performance.enable", "Runtime.addBinding",
		"Runtime.callFunctionOn", "Runtime.enable", "Runtime.evaluate", "Runtime.releaseObject",
		"Runtime.runIfWaitingForDebugger", "Target.closeTarget", "Target.createTarget",
		"Target.getBrowserContexts", "Target.setAutoAttach", "Target.setDiscoverTargets",
		"WebMCP.enable",
	},
	"chromedp": {
		"CSS.enable", "DOM.enable", "DOM.focus", "DOM.getBoxModel", "DOM.getContentQuads",
		"DOM.getDocument", "DOM.querySelector", "DOM.resolveNode", "DOM.scrollIntoViewIfNeeded",
		"DOM.setFileInputFiles", "Input.dispatchKeyEvent", "Input.dispatchMouseEvent",
		"Inspector.enable", "Log.enable", "Network.enable", "Page.captureScreenshot", "Page.enable",
		"Page.navigate", "Page.setLifecycleEventsEnabled", "Runtime.callFunctionOn", "Runtime.enable",
		"Runtime.evaluate", "Runtime.releaseObject", "Target.attachToTarget", "Target.closeTarget",
		"Target.createTarget", "Target.detachFromTarget", "Target.getTargets", "Target.setAutoAttach",
		"Target.setDiscoverTargets",
	},
}

func TestClientsSeenAllowedForAgent(t *testing.T) {
	for client, methods := range clientsSeen {
		for _, m := range methods {
			if !allowed(Agent, m) {
				t.Errorf("%s sent %s in an ordinary flow, but it is not allowed for role agent", client, m)
			}
		}
	}
}
