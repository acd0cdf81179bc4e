package novnc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dataplanelabs/scry/internal/rfbclient"
)

const testW, testH = 640, 480

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startServer runs a Handler for vncAddr under httptest.
func startServer(t testing.TB, cfg Config) (*Handler, *httptest.Server) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return h, srv
}

// dialViewer opens /websockify like noVNC does and returns the tunnel.
func dialViewer(ctx context.Context, srv *httptest.Server) (net.Conn, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/websockify"
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		return nil, resp, err
	}
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), resp, nil
}

func handshake(t testing.TB, srv *httptest.Server, password string) (*rfbclient.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := dialViewer(ctx, srv)
	if err != nil {
		t.Fatalf("dial /websockify: %v", err)
	}
	c, err := rfbclient.Handshake(ctx, conn, rfbclient.Config{Password: password})
	if err != nil {
		conn.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// readFullFrame requests the whole screen and reads raw rectangles until
// they cover it.
func readFullFrame(t testing.TB, c *rfbclient.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.RequestFull(); err != nil {
		t.Fatalf("%v", err)
	}
	want := int(c.Width) * int(c.Height)
	bpp := c.PixelFormat.BytesPerPixel()
	for got := 0; got < want; {
		rects, err := c.ReadUpdate(ctx)
		if err != nil {
			t.Fatalf("read update (%d of %d pixels so far): %v", got, want, err)
		}
		for _, r := range rects {
			if r.Encoding != rfbclient.EncodingRaw {
				continue
			}
			if len(r.Data) != int(r.W)*int(r.H)*bpp {
				t.Fatalf("raw rect %dx%d has %d bytes", r.W, r.H, len(r.Data))
			}
			got += int(r.W) * int(r.H)
		}
	}
}

// serverPW is x11vnc's own password in the tests, as scry's random one.
const serverPW = "x11-Only"

func TestBridgeNoPassword(t *testing.T) {
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, serverPW)
	h, srv := startServer(t, Config{VNCAddr: vncAddr, ServerPassword: serverPW})

	c, err := handshake(t, srv, "")
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if c.Version != "RFB 003.008" {
		t.Errorf("ProtocolVersion = %q, want RFB 003.008", c.Version)
	}
	if !slices.Equal(c.SecurityTypes, []uint8{rfbclient.SecurityNone}) || c.Security != rfbclient.SecurityNone {
		t.Errorf("security types offered %v, used %d; want only None", c.SecurityTypes, c.Security)
	}
	if c.Width != testW || c.Height != testH {
		t.Errorf("framebuffer %dx%d, want the Xvfb size %dx%d", c.Width, c.Height, testW, testH)
	}
	if c.Name != "scry" {
		t.Errorf("desktop name %q, want scry", c.Name)
	}
	if err := c.SetEncodings(rfbclient.EncodingRaw); err != nil {
		t.Fatal(err)
	}
	readFullFrame(t, c)
	if n := h.Viewers(); n != 1 {
		t.Errorf("Viewers() = %d, want 1", n)
	}
	// Input reaches x11vnc without breaking the session.
	if err := c.Click(10, 10); err != nil {
		t.Fatal(err)
	}
	if err := c.TypeText("hello, scry\n"); err != nil {
		t.Fatal(err)
	}
	readFullFrame(t, c)
}

func TestBridgePassword(t *testing.T) {
	display := startXvfb(t, testW, testH)
	const password = "s3cret-pw" // 9 bytes: VNC uses "s3cret-p"
	vncAddr := startX11vnc(t, display, serverPW)
	_, srv := startServer(t, Config{VNCAddr: vncAddr, Password: password, ServerPassword: serverPW, FailDelay: -1})

	tests := []struct {
		name     string
		password string
		wantErr  string
	}{
		{"wrong", "nope", "authentication failed: wrong password"},
		{"x11vnc's own password", serverPW, "authentication failed: wrong password"},
		{"missing", "", "requires a password"},
		{"right", password, ""},
		{"first eight bytes", "s3cret-p", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := handshake(t, srv, tt.password)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("handshake error = %v, want %q", err, tt.wantErr)
				}
				var ae *rfbclient.AuthError
				if errors.As(err, &ae) {
					t.Logf("server's reason: %q", ae.Reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if !slices.Equal(c.SecurityTypes, []uint8{rfbclient.SecurityVNCAuth}) {
				t.Errorf("security types offered %v, want only VNC auth", c.SecurityTypes)
			}
			readFullFrame(t, c)
		})
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestViewerCloseClosesOnlyItsBridge(t *testing.T) {
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, "")
	h, srv := startServer(t, Config{VNCAddr: vncAddr})

	a, err := handshake(t, srv, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := handshake(t, srv, "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two viewers", func() bool { return h.Viewers() == 2 })
	readFullFrame(t, a)

	a.Close() // the tab goes away
	waitFor(t, "one viewer", func() bool { return h.Viewers() == 1 })

	readFullFrame(t, b)
	readFullFrame(t, b)
	if got := h.TotalViewers(); got != 2 {
		t.Errorf("TotalViewers() = %d, want 2", got)
	}
}

func TestMaxViewers(t *testing.T) {
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, "")
	h, srv := startServer(t, Config{VNCAddr: vncAddr, MaxViewers: 1})

	a, err := handshake(t, srv, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, resp, err := dialViewer(ctx, srv)
	if err == nil {
		t.Fatal("second viewer accepted, want 503")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second viewer: err %v, response %v; want 503", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "too many viewers") {
		t.Errorf("503 body %q, want a message", body)
	}

	a.Close()
	waitFor(t, "the slot to free", func() bool { return h.Viewers() == 0 })
	if _, err := handshake(t, srv, ""); err != nil {
		t.Fatalf("viewer after the first left: %v", err)
	}
}

// TestVNCDown: a viewer arriving while x11vnc is down gets a WebSocket close
// it can retry on, and nothing leaks.
func TestVNCDown(t *testing.T) {
	h, srv := startServer(t, Config{VNCAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)), StaticDir: fakeNoVNC(t)})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, _, err := dialViewer(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rfbclient.Handshake(ctx, conn, rfbclient.Config{})
	if websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
		t.Errorf("handshake = %v, want close status %v", err, websocket.StatusTryAgainLater)
	}
	waitFor(t, "no viewers", func() bool { return h.Viewers() == 0 })
}

func TestCrossOriginRefused(t *testing.T) {
	_, srv := startServer(t, Config{VNCAddr: "127.0.0.1:1", StaticDir: fakeNoVNC(t)})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/websockify"
	_, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://evil.example"}},
	})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin dial: err %v, resp %v; want 403", err, resp)
	}
}

// fakeNoVNC is a minimal static dir for tests that do not load the page.
func fakeNoVNC(t testing.TB) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "core"), 0o755)
	os.WriteFile(filepath.Join(dir, "core", "rfb.js"), []byte("export default class RFB {}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "vnc.html"), []byte("<!doctype html><title>noVNC</title>\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "logo.png"), []byte("png"), 0o644)
	return dir
}

func TestNewMissingStaticDir(t *testing.T) {
	empty := t.TempDir()
	noRFB := t.TempDir()
	os.WriteFile(filepath.Join(noRFB, "vnc.html"), nil, 0o644)
	for _, dir := range []string{filepath.Join(empty, "nope"), empty, noRFB} {
		_, err := New(Config{StaticDir: dir})
		if err == nil {
			t.Fatalf("New(%q): want an error", dir)
		}
		for _, want := range []string{"novnc", "NOVNC_DIR", dir} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("New(%q) error %q does not mention %q", dir, err, want)
			}
		}
	}
}

func TestStaticRoutes(t *testing.T) {
	dirs := map[string]string{"fake": fakeNoVNC(t)}
	if _, err := os.Stat(filepath.Join(DefaultStaticDir, "core", "rfb.js")); err == nil {
		dirs["debian"] = DefaultStaticDir
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			_, srv := startServer(t, Config{StaticDir: dir, VNCAddr: "127.0.0.1:1"})
			tests := []struct {
				path, wantType, wantBody string
				wantCode                 int
			}{
				{"/", "text/html", "new URL('websockify', base)", 200},
				{"/vnc.html", "text/html", "noVNC", 200},
				{"/core/rfb.js", "text/javascript", "RFB", 200},
				{"/core/", "", "", 404},
				{"/core", "", "", 404},
				{"/../etc/passwd", "", "", 404},
				{"/nope.js", "", "", 404},
			}
			for _, tt := range tests {
				resp, err := http.Get(srv.URL + tt.path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.wantCode {
					t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.wantCode)
					continue
				}
				if tt.wantCode != 200 {
					continue
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
					t.Errorf("GET %s Content-Type %q, want %s", tt.path, ct, tt.wantType)
				}
				if !strings.Contains(string(body), tt.wantBody) {
					t.Errorf("GET %s body lacks %q", tt.path, tt.wantBody)
				}
				if resp.Header.Get("Cache-Control") != "no-cache" {
					t.Errorf("GET %s Cache-Control %q, want no-cache", tt.path, resp.Header.Get("Cache-Control"))
				}
				if resp.Header.Get("X-Frame-Options") != "DENY" {
					t.Errorf("GET %s lacks X-Frame-Options", tt.path)
				}
			}
		})
	}
}

// TestCloseEndsBridges: Close (after the HTTP server's Shutdown) ends the
// hijacked WebSocket bridges the server no longer sees, and refuses new ones.
func TestCloseEndsBridges(t *testing.T) {
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, "")
	h, srv := startServer(t, Config{VNCAddr: vncAddr})
	c, err := handshake(t, srv, "")
	if err != nil {
		t.Fatal(err)
	}
	readFullFrame(t, c)
	h.Close()
	if n := h.Viewers(); n != 0 {
		t.Errorf("Viewers() = %d after Close, want 0", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := c.ReadUpdate(ctx); err == nil {
		t.Error("viewer still reads after Close")
	}
	if _, resp, err := dialViewer(ctx, srv); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: %v, %v; want 503", err, resp)
	}
}

// TestExclusiveViewerKicksNobody: a viewer asking for exclusive access
// (ClientInit shared=0) must not disconnect the human already watching.
func TestExclusiveViewerKicksNobody(t *testing.T) {
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, serverPW)
	h, srv := startServer(t, Config{VNCAddr: vncAddr, ServerPassword: serverPW})

	a, err := handshake(t, srv, "")
	if err != nil {
		t.Fatal(err)
	}
	readFullFrame(t, a)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	conn, _, err := dialViewer(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rfbclient.Handshake(ctx, conn, rfbclient.Config{Exclusive: true})
	if err != nil {
		t.Fatalf("exclusive viewer: %v", err)
	}
	defer b.Close()
	readFullFrame(t, b)
	readFullFrame(t, a) // still connected
	if n := h.Viewers(); n != 2 {
		t.Errorf("Viewers() = %d, want 2", n)
	}
}

// TestLoginsInProgressHoldNoViewerSlot: connections that never log in
// cannot lock the human out of a one-viewer screen.
func TestLoginsInProgressHoldNoViewerSlot(t *testing.T) {
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, serverPW)
	h, srv := startServer(t, Config{VNCAddr: vncAddr, ServerPassword: serverPW, Password: "pw", MaxViewers: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for range 2 { // idle at the password prompt
		conn, _, err := dialViewer(ctx, srv)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.ReadFull(conn, make([]byte, 12)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := handshake(t, srv, "pw")
	if err != nil {
		t.Fatalf("the human, behind two idle logins: %v", err)
	}
	readFullFrame(t, c)
	if n := h.Viewers(); n != 1 {
		t.Errorf("Viewers() = %d, want 1 (logins in progress are not viewers)", n)
	}
	// Now the screen is full: the next one is refused before any handshake.
	_, resp, err := dialViewer(ctx, srv)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a second viewer: %v, %v; want 503", resp, err)
	}
}

// TestStaticServesOnlyPageFiles: of noVNC's package, only what the pages
// load is served; its utilities (novnc_proxy, validate, u2x11 ...), READMEs
// and build files are 404, whether they exist or not.
func TestStaticServesOnlyPageFiles(t *testing.T) {
	fake := fakeNoVNC(t)
	files := []string{"utils/novnc_proxy", "utils/validate", "utils/u2x11", "utils/use_require.js",
		"vendor/pako/README.md", "vendor/pako/lib/zlib/inflate.js", "app/sounds/CREDITS", "app/sounds/bell.oga",
		"app/locale/README", "app/locale/de.json", "app/ui.js", "app/styles/base.css", "app/images/icons/Makefile",
		"app/images/icons/novnc-icon.svg", "include/logo.js.png", "vnc_auto.html", "vnc_lite.html", "core/input/keysymdef.js"}
	for _, f := range files {
		os.MkdirAll(filepath.Join(fake, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(fake, f), []byte("x"), 0o644)
	}
	dirs := map[string]string{"fake": fake}
	if _, err := os.Stat(filepath.Join(DefaultStaticDir, "utils", "novnc_proxy")); err == nil {
		dirs["debian"] = DefaultStaticDir
	}
	served := []string{"/vnc.html", "/vnc_lite.html", "/core/rfb.js", "/core/input/keysymdef.js",
		"/vendor/pako/lib/zlib/inflate.js", "/app/ui.js", "/app/styles/base.css", "/app/locale/de.json",
		"/app/images/icons/novnc-icon.svg", "/app/sounds/bell.oga"}
	hidden := []string{"/utils/novnc_proxy", "/utils/validate", "/utils/u2x11", "/utils/use_require.js",
		"/vendor/pako/README.md", "/app/sounds/CREDITS", "/app/locale/README", "/app/images/icons/Makefile",
		"/include/logo.js.png", "/vnc_auto.html", "/core/../utils/validate", "/core/%2e%2e/utils/validate",
		"/app//../utils/u2x11", "/logo.png"}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			_, srv := startServer(t, Config{StaticDir: dir, VNCAddr: "127.0.0.1:1"})
			get := func(p string) int { // after redirects to the clean path
				resp, err := http.Get(srv.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			for _, p := range served {
				if code := get(p); code != http.StatusOK {
					t.Errorf("GET %s = %d, want 200: the pages load it", p, code)
				}
			}
			for _, p := range hidden {
				if code := get(p); code != http.StatusNotFound {
					t.Errorf("GET %s = %d, want 404", p, code)
				}
			}
		})
	}
}
