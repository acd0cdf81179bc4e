package webhook

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRetriesUntilDelivered: an endpoint failing twice gets the same body a
// third time; the failures are counted and logged without the URL or body.
func TestRetriesUntilDelivered(t *testing.T) {
	var mu sync.Mutex
	var got []string
	delivered := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(b))
		if len(got) < 3 {
			http.Error(w, "not yet", http.StatusBadGateway)
			return
		}
		close(delivered)
	}))
	defer srv.Close()
	var log bytes.Buffer
	s := New(srv.URL+"/secret-path", slog.New(slog.NewTextHandler(&log, nil)), Options{FirstDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond})
	defer s.Close()
	s.Send("test 1", map[string]string{"text": "the-link"})
	<-delivered
	s.wg.Wait() // the delivery has ended
	mu.Lock()
	defer mu.Unlock()
	for _, b := range got {
		if b != `{"text":"the-link"}` {
			t.Errorf("body %q", b)
		}
	}
	if v := testutil.ToFloat64(s.results.WithLabelValues("retry")); v != 2 {
		t.Errorf("retries %v, want 2", v)
	}
	if v := testutil.ToFloat64(s.results.WithLabelValues("ok")); v != 1 {
		t.Errorf("ok %v, want 1", v)
	}
	if strings.Contains(log.String(), "secret-path") || strings.Contains(log.String(), "the-link") {
		t.Errorf("the log names the URL or the body:\n%s", log.String())
	}
}

// TestGivesUp: a dead endpoint is retried until MaxElapsed, then counted
// as failed; Send never blocks meanwhile.
func TestGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	s := New(srv.URL, nil, Options{FirstDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxElapsed: 50 * time.Millisecond})
	for range 3 {
		s.Send("x", map[string]int{"n": 1})
	}
	s.wg.Wait()
	if v := testutil.ToFloat64(s.results.WithLabelValues("failed")); v != 3 {
		t.Errorf("failed %v, want 3", v)
	}
	s.Close()
}
