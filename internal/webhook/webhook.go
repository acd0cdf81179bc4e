// Package webhook posts JSON notifications to one URL (HANDOFF_WEBHOOK_URL)
// without ever blocking the caller: each delivery runs on its own, retried
// with capped, jittered backoff until it succeeds or MaxElapsed passes.
//
// Neither the URL (a Slack or Mattermost webhook URL is itself a secret)
// nor a body (it may carry a handoff link) is ever logged.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Sender's zero values.
const (
	DefaultMaxElapsed = 2 * time.Minute
	DefaultFirstDelay = time.Second
	DefaultMaxDelay   = 30 * time.Second
	attemptTimeout    = 10 * time.Second
	// maxInFlight bounds deliveries retrying at once; past it new ones
	// are dropped (and counted), so a dead endpoint cannot pile up
	// goroutines.
	maxInFlight = 64
)

// Sender delivers notifications. Its zero value is not usable; call New.
type Sender struct {
	url        string
	client     *http.Client
	log        *slog.Logger
	maxElapsed time.Duration
	first, cap time.Duration

	results *prometheus.CounterVec
	sem     chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Options tune a Sender; zero values mean the defaults.
type Options struct {
	Client     *http.Client
	MaxElapsed time.Duration
	FirstDelay time.Duration
	MaxDelay   time.Duration
}

// New returns a Sender posting to url.
func New(url string, log *slog.Logger, o Options) *Sender {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: attemptTimeout}
	}
	if o.MaxElapsed <= 0 {
		o.MaxElapsed = DefaultMaxElapsed
	}
	if o.FirstDelay <= 0 {
		o.FirstDelay = DefaultFirstDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		url: url, client: o.Client, log: log,
		maxElapsed: o.MaxElapsed, first: o.FirstDelay, cap: o.MaxDelay,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scry_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: ok, retry (failed, to be retried), failed (given up after the retry window), dropped (too many deliveries retrying)."},
			[]string{"result"}),
		sem: make(chan struct{}, maxInFlight),
	}
	for _, r := range []string{"ok", "retry", "failed", "dropped"} {
		s.results.WithLabelValues(r)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Collectors are the Sender's metrics.
func (s *Sender) Collectors() []prometheus.Collector { return []prometheus.Collector{s.results} }

// Send posts body (marshalled to JSON) in the background; what names the
// delivery in the log ("handoff.created h_…").
func (s *Sender) Send(what string, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		s.log.Error("webhook: cannot encode the notification", "what", what, "err", err)
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.results.WithLabelValues("dropped").Inc()
		s.log.Error("webhook: notification dropped: too many deliveries are retrying; is the webhook's endpoint down?", "what", what)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		s.deliver(what, b)
	}()
}

func (s *Sender) deliver(what string, body []byte) {
	start := time.Now()
	delay := s.first
	for attempt := 1; ; attempt++ {
		err := s.post(body)
		if err == nil {
			s.results.WithLabelValues("ok").Inc()
			if attempt > 1 {
				s.log.Info("webhook delivered after retries", "what", what, "attempts", attempt)
			}
			return
		}
		// Jitter ±20%: many deliveries failing together spread out.
		wait := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		if time.Since(start)+wait > s.maxElapsed || s.ctx.Err() != nil {
			s.results.WithLabelValues("failed").Inc()
			s.log.Error("webhook delivery failed; giving up", "what", what, "attempts", attempt,
				"after", time.Since(start).Round(time.Millisecond), "err", err)
			return
		}
		s.results.WithLabelValues("retry").Inc()
		s.log.Warn("webhook delivery failed; retrying", "what", what, "attempt", attempt, "in", wait.Round(time.Millisecond), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		}
		delay = min(delay*2, s.cap)
	}
}

// post makes one attempt. Its errors never carry the URL.
func (s *Sender) post(body []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bad webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "scry-webhook")
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error names the URL: keep only the cause.
		if ue, ok := err.(interface{ Unwrap() error }); ok && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return fmt.Errorf("post: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}

// Close gives up on deliveries still retrying (each makes no more
// attempts) and waits for them.
func (s *Sender) Close() {
	s.cancel()
	s.wg.Wait()
}
