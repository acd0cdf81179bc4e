package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/browser"
	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/cookies"
)

// A restore that cannot reach Chromium stops the start-up, and the error
// says how to start anyway and where the snapshot is.
func TestRestoreUnreachableSaysWhatToDo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing answers there now
	dir := t.TempDir()
	s := &scry{
		cfg:      &config.Config{ProfileDir: dir, CookieInterval: time.Minute},
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		bconn:    &browserConn{addr: addr},
		chromium: &browser.Chromium{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.newCookies()
	err = s.cookies.Run(ctx)
	if err == nil {
		s.cookies.Close(ctx)
		t.Fatal("the cookie snapshots started with no Chromium to talk to")
	}
	for _, want := range []string{"SESSION_COOKIES=off", filepath.Join(dir, cookies.FileName)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
