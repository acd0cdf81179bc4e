package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/supervise"
)

// designFlags are the original design's five flags, spelled out here so a
// change to DesignFlags itself is caught.
var designFlags = []string{
	"--disable-dev-shm-usage",
	"--disable-gpu",
	"--disable-background-timer-throttling",
	"--disable-backgrounding-occluded-windows",
	"--disable-renderer-backgrounding",
}

func TestDesignFlags(t *testing.T) {
	if !slices.Equal(DesignFlags, designFlags) {
		t.Errorf("DesignFlags = %q, want the design's %q", DesignFlags, designFlags)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name  string
		cfg   config.Config
		want  []string
		extra []string // expected at the end, in this order
	}{
		{
			name: "defaults",
			cfg:  config.Config{ProfileDir: "/data", CDPInternalPort: 9223, Screen: config.Screen{Width: 1440, Height: 900, Depth: 24}},
			want: []string{"--user-data-dir=/data", "--profile-directory=Default", "--remote-debugging-port=9223", "--no-first-run", "--window-size=1440,901", "--allow-pre-commit-input"},
		},
		{
			name: "other geometry and port",
			cfg:  config.Config{ProfileDir: "/profiles/a b", CDPInternalPort: 19223, Screen: config.Screen{Width: 1920, Height: 1080, Depth: 24}},
			want: []string{"--user-data-dir=/profiles/a b", "--remote-debugging-port=19223", "--window-size=1920,1081"},
		},
		{
			name: "extra flags last, in order",
			cfg: config.Config{ProfileDir: "/data", CDPInternalPort: 9223, Screen: config.Screen{Width: 1440, Height: 900, Depth: 24},
				ChromeExtraFlags: []string{"--lang=de-DE", "--proxy-server=http://proxy:3128", "--disable-gpu"}},
			want:  []string{"--window-size=1440,901"},
			extra: []string{"--lang=de-DE", "--proxy-server=http://proxy:3128", "--disable-gpu"},
		},
		{
			name: "user asks for no sandbox",
			cfg: config.Config{ProfileDir: "/data", CDPInternalPort: 9223, Screen: config.Screen{Width: 1440, Height: 900, Depth: 24},
				ChromeExtraFlags: []string{"--no-sandbox"}},
			extra: []string{"--no-sandbox"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags := Flags(&tt.cfg, StartupRestore)
			for _, f := range append(slices.Clone(designFlags), tt.want...) {
				if !slices.Contains(flags, f) {
					t.Errorf("Flags lack %q: %q", f, flags)
				}
			}
			if !slices.Contains(flags, "--remote-debugging-address=127.0.0.1") {
				t.Errorf("CDP not bound to loopback: %q", flags)
			}
			if n := len(tt.extra); n > 0 {
				if got := flags[len(flags)-n:]; !slices.Equal(got, tt.extra) {
					t.Errorf("Flags end with %q, want CHROME_EXTRA_FLAGS %q", got, tt.extra)
				}
			}
			if slices.Contains(flags, "--no-sandbox") && !slices.Contains(tt.cfg.ChromeExtraFlags, "--no-sandbox") {
				t.Errorf("Flags turn the sandbox off on their own: %q", flags)
			}
			for _, f := range flags {
				if strings.HasPrefix(f, "--headless") {
					t.Errorf("Flags make the browser headless: %q", f)
				}
			}
			// Flags must not alias the config's slice.
			if len(tt.cfg.ChromeExtraFlags) > 0 {
				flags[len(flags)-1] = "changed"
				if tt.cfg.ChromeExtraFlags[len(tt.cfg.ChromeExtraFlags)-1] == "changed" {
					t.Error("Flags shares its backing array with ChromeExtraFlags")
				}
			}
		})
	}
}

// A profile that opens a new tab at launch opens about:blank instead, as
// the very last argument (after CHROME_EXTRA_FLAGS, where Chromium reads a
// URL); one that restores its pages or opens listed ones gets no URL, so
// it gains no blank tab at each start.
func TestFlagsStartURL(t *testing.T) {
	cfg := &config.Config{ProfileDir: "/data", CDPInternalPort: 9223, Screen: config.Screen{Width: 1, Height: 1, Depth: 24},
		ChromeExtraFlags: []string{"--lang=de-DE"}}
	if f := Flags(cfg, StartupNewTab); f[len(f)-1] != "about:blank" || f[len(f)-2] != "--lang=de-DE" {
		t.Errorf("new-tab profile: Flags end with %q, want --lang=de-DE about:blank", f[len(f)-2:])
	}
	restoring := &config.Config{ProfileDir: "/data", CDPInternalPort: 9223, Screen: config.Screen{Width: 1, Height: 1, Depth: 24},
		ChromeExtraFlags: []string{"--restore-last-session"}}
	for _, tc := range []struct {
		cfg *config.Config
		st  Startup
	}{{cfg, StartupRestore}, {cfg, StartupURLs}, {restoring, StartupNewTab}} {
		for _, f := range Flags(tc.cfg, tc.st) {
			if !strings.HasPrefix(f, "-") {
				t.Errorf("startup %d, extra flags %q: Flags carry the URL %q", tc.st, tc.cfg.ChromeExtraFlags, f)
			}
		}
	}
}

func TestFlagsDoNotAliasDesignFlags(t *testing.T) {
	cfg := &config.Config{ProfileDir: "/data", CDPInternalPort: 9223, Screen: config.Screen{Width: 1, Height: 1, Depth: 24}}
	a := Flags(cfg, StartupNewTab)
	a[0] = "changed"
	if DesignFlags[0] == "changed" {
		t.Fatal("Flags shares its backing array with DesignFlags")
	}
}

func TestClassifyOutput(t *testing.T) {
	tests := []struct {
		line string
		want slog.Level
	}{
		{"[123:456:0101/000000.000000:FATAL:zygote_host_impl_linux.cc(127)] No usable sandbox!", slog.LevelError},
		{"FATAL: something broke", slog.LevelError},
		// Lines as this image's Chromium prints them without a desktop bus.
		{"[17833:17873:1123/234713.629688:ERROR:dbus/bus.cc:405] Failed to connect to the bus: Failed to connect to socket /run/dbus/system_bus_socket: No such file or directory", slog.LevelDebug},
		{`[17833:17873:1123/234713.630545:ERROR:dbus/bus.cc:405] Failed to connect to the bus: Could not parse server address: Unknown address type (examples of valid types are "tcp" and on UNIX "unix")`, slog.LevelDebug},
		{"[17833:17833:1123/234715.347558:ERROR:dbus/object_proxy.cc:572] Failed to call method: org.freedesktop.DBus.NameHasOwner: object_path= /org/freedesktop/DBus: unknown error type: ", slog.LevelDebug},
		{"/usr/bin/chromium: 9: [: 25275940864: unexpected operator", slog.LevelDebug},
		{"Failed to connect to the D-Bus session bus", slog.LevelDebug},
		{"Fontconfig error: Cannot load default config file", slog.LevelDebug},
		{"[1:2:1123/234715.0:ERROR:gpu_init.cc(1)] something else", slog.LevelInfo},
		{"DevTools listening on ws://127.0.0.1:9223/devtools/browser/abc", slog.LevelInfo},
		{"", slog.LevelInfo},
	}
	for _, tt := range tests {
		if got := ClassifyOutput(tt.line); got != tt.want {
			t.Errorf("ClassifyOutput(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

// startChild runs a supervised /bin/sh script for the browser helpers to
// watch.
func startChild(t *testing.T, script string) *supervise.Process {
	t.Helper()
	p, err := supervise.Start(supervise.Spec{
		Name: "chromium", Path: "/bin/sh", Args: []string{"-c", script},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background(), time.Second) })
	return p
}

func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestWaitCDP(t *testing.T) {
	// Chromium answers 503 a few times while it starts, then for real.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"Browser":"Chrome/126.0","webSocketDebuggerUrl":"ws://%s/devtools/browser/B1"}`, r.Host)
	}))
	defer srv.Close()
	p := startChild(t, "exec sleep 1000")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := WaitCDP(ctx, srv.Listener.Addr().String(), p)
	if err != nil {
		t.Fatalf("WaitCDP: %v", err)
	}
	if v.Browser != "Chrome/126.0" || calls.Load() < 3 {
		t.Errorf("WaitCDP = %+v after %d calls", v, calls.Load())
	}
}

func TestWaitCDPFails(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		want    string
	}{
		{"chromium exits", "exit 4", 20 * time.Second, "chromium exited during start-up: chromium exited with status 4"},
		{"chromium never answers", "exec sleep 1000", 200 * time.Millisecond, "did not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startChild(t, tt.script)
			addr := deadAddr(t)
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			_, err := WaitCDP(ctx, addr, p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WaitCDP = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestClose serves a fake DevTools endpoint whose Browser.close ends the
// "browser" process, the way Chromium exits after flushing its profile.
func TestClose(t *testing.T) {
	p := startChild(t, "exec sleep 1000")
	var methods []string
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("/json/version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"Browser":"Chrome/126.0","webSocketDebuggerUrl":"ws://%s/devtools/browser/B1"}`, r.Host)
	})
	mux.HandleFunc("/devtools/browser/B1", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			var req struct {
				ID     int64  `json:"id"`
				Method string `json:"method"`
			}
			_ = json.Unmarshal(b, &req)
			mu.Lock()
			methods = append(methods, req.Method)
			mu.Unlock()
			_ = c.Write(r.Context(), websocket.MessageText, []byte(fmt.Sprintf(`{"id":%d,"result":{}}`, req.ID)))
			if req.Method == "Browser.close" {
				_ = p.Signal(syscall.SIGTERM)
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Close(ctx, srv.Listener.Addr().String(), p); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !p.Exited() {
		t.Fatal("Close returned with the browser running")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(methods, []string{"Browser.close"}) {
		t.Errorf("browser got %q, want Browser.close", methods)
	}
	// Closing an exited browser is a no-op.
	if err := Close(ctx, srv.Listener.Addr().String(), p); err != nil {
		t.Errorf("Close of an exited browser: %v", err)
	}
}

func TestCloseUnreachable(t *testing.T) {
	p := startChild(t, "exec sleep 1000")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := Close(ctx, deadAddr(t), p)
	if err == nil || !strings.Contains(err.Error(), "browser.close") {
		t.Fatalf("Close = %v, want an error for the caller to fall back to signals", err)
	}
}
