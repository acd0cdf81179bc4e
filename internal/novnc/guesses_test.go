package novnc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/rfbauth"
)

// guessFor plays a guesser against g on a fake clock: check, then wrong,
// until ctx ends, noting when each wrong answer was checked.
func guessFor(ctx context.Context, g *guesses, addr string, mu *sync.Mutex, at *[]time.Time) {
	for {
		q, err := g.check(ctx, addr)
		if err != nil {
			return
		}
		mu.Lock()
		*at = append(*at, time.Now())
		mu.Unlock()
		q.wrong(ctx)
	}
}

// maxInWindow is the most of the sorted times that fall within any span
// shorter than w.
func maxInWindow(times []time.Time, w time.Duration) int {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i, j := 0, 0; j < len(times); j++ {
		for times[j].Sub(times[i]) >= w {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}

// TestGuessesBoundTheTotal: 16 parallel guessers from one address, 16 more
// from 16 others, and 4 that take a fresh address for every guess, for 10
// minutes of a fake clock: in no minute are more than 60 answers checked
// and found wrong, and the one address's 16 are held to its own growing
// delay.
func TestGuessesBoundTheTotal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuesses(time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		defer cancel()
		var mu sync.Mutex
		var all, one []time.Time
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() { guessFor(ctx, g, "10.0.0.1", &mu, &one) })
			wg.Go(func() { guessFor(ctx, g, fmt.Sprintf("10.0.1.%d", i), &mu, &all) })
		}
		for i := range 4 {
			wg.Go(func() {
				for n := 0; ctx.Err() == nil; n++ {
					q, err := g.check(ctx, fmt.Sprintf("10.%d.%d.%d", 1+i, n/256%256, n%256))
					if err != nil {
						return
					}
					mu.Lock()
					all = append(all, time.Now())
					mu.Unlock()
					q.wrong(ctx)
				}
			})
		}
		wg.Wait()
		all = append(all, one...)
		if n := g.wrongAnswers(); n != int64(len(all)) {
			t.Errorf("counted %d wrong answers, the guessers saw %d", n, len(all))
		}
		most := maxInWindow(all, time.Minute)
		if most > 60 {
			t.Errorf("%d wrong answers within a minute, want at most 60", most)
		}
		t.Logf("%d wrong answers in 10 minutes, at most %d in a minute; %d from the one address", len(all), most, len(one))
		// Delays 1, 2, 4 ... 32 s, then a minute each: 7 in the first
		// minute, then one a minute.
		if len(one) > 7+10 {
			t.Errorf("16 guessers from one address had %d answers checked in 10 minutes, want at most 17", len(one))
		}
		if len(all) < 10*50 {
			t.Errorf("only %d answers checked in 10 minutes: the bound is 60 a minute, and fresh addresses may use it", len(all))
		}
	})
}

// TestGuessesRightAnswerIsNotHeld: while guessers saturate what they may
// use, an address without failures has its answer checked at once, and a
// right answer leaves no trace.
func TestGuessesRightAnswerIsNotHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuesses(time.Second)
		ctx, cancel := context.WithCancel(t.Context())
		var mu sync.Mutex
		var at []time.Time
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() { guessFor(ctx, g, "10.0.0.1", &mu, &at) })
			wg.Go(func() { guessFor(ctx, g, fmt.Sprintf("10.0.1.%d", i), &mu, &at) })
		}
		time.Sleep(5 * time.Minute) // the fake clock: guessing goes on
		for range 3 {
			start := time.Now()
			q, err := g.check(ctx, "192.0.2.7")
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("a right answer waited %v (on the fake clock) for other addresses' failures", d)
			}
			q.right()
			time.Sleep(time.Second)
		}
		cancel()
		wg.Wait()
	})
}

// TestGuessesDelayGrowsAndDecays: an address's failures double its delay
// up to the cap, and a quiet spell brings it back down.
func TestGuessesDelayGrowsAndDecays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuesses(time.Second)
		var held []time.Duration
		for range 8 {
			q, err := g.check(t.Context(), "10.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			q.wrong(t.Context())
			held = append(held, time.Since(start))
		}
		want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
		for i := range want {
			want[i] *= time.Second
		}
		// Decay during the waits makes a later delay at most what it was.
		for i := range held {
			if held[i] > want[i] || i > 0 && i < 6 && held[i] <= held[i-1] {
				t.Fatalf("wrong answers held %v, want doubling from 1 s up to 1 min: %v", held, want)
			}
		}
		time.Sleep(time.Hour) // quiet: the count halves every 5 minutes
		q, err := g.check(t.Context(), "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		q.wrong(t.Context())
		if d := time.Since(start); d != time.Second {
			t.Errorf("after an hour's quiet a wrong answer was held %v, want the first delay, 1 s", d)
		}
	})
}

// TestGuessesGiveUpAtTheDeadline: a guesser whose turn would come after
// its connection's deadline is told so at once; a cancelled one leaves.
func TestGuessesGiveUpAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuesses(time.Second)
		for range 5 {
			q, _ := g.check(t.Context(), "10.0.0.1")
			q.wrong(t.Context())
		}
		q, _ := g.check(t.Context(), "10.0.0.1")
		go q.wrong(t.Context()) // a 32 s delay starts
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := g.check(ctx, "10.0.0.1"); !errors.Is(err, errThrottled) {
			t.Errorf("check with a deadline before the turn: %v, want errThrottled", err)
		}
		ctx, cancel = context.WithCancel(t.Context())
		go cancel()
		if _, err := g.check(ctx, "10.0.0.1"); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled check: %v, want context.Canceled", err)
		}
	})
}

func TestSourceAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5000":                "192.0.2.1",
		"[::ffff:192.0.2.1]:5000":       "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:80":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1%eth0]:1": "2001:db8:1:2::/64",
		"pipe":                          "pipe",
	} {
		if got := sourceAddr(in); got != want {
			t.Errorf("sourceAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// dialFrom opens /websockify from a given loopback address (Linux routes
// all of 127/8 to lo), so that one test plays several hosts.
func dialFrom(ctx context.Context, srv *httptest.Server, ip string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/websockify"
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: client, Subprotocols: []string{"binary"}})
	if err != nil {
		return nil, err
	}
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}

// guessOnce logs in from ip with a wrong password, as a scripted guesser
// does: it reads no more than it must, and any error ends the attempt.
func guessOnce(ctx context.Context, srv *httptest.Server, ip string) {
	c, err := dialFrom(ctx, srv, ip)
	if err != nil {
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	b := make([]byte, 16)
	if _, err := io.ReadFull(c, b[:12]); err != nil {
		return
	}
	if _, err := c.Write([]byte("RFB 003.008\n")); err != nil {
		return
	}
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return
	}
	if _, err := c.Write([]byte{rfbauth.SecurityVNCAuth}); err != nil {
		return
	}
	if _, err := io.ReadFull(c, b); err != nil {
		return
	}
	if _, err := c.Write(bytes.Repeat([]byte{0xA5}, 16)); err != nil {
		return
	}
	io.ReadFull(c, b[:4]) // the SecurityResult, when it comes
}

// TestParallelGuessersGetTheBound: 16 guessers from 16 addresses through
// the real handler see at most the bound, 60 wrong answers per 60
// FailDelays, however long the run took (the bound is counted against the
// run's own length, so a slow machine only loosens it). The old pacer let
// them have 1.6 per FailDelay.
func TestParallelGuessersGetTheBound(t *testing.T) {
	const delay = 10 * time.Millisecond
	var ref refusals
	h, srv := startServer(t, Config{VNCAddr: "127.0.0.1:1", StaticDir: fakeNoVNC(t), ServerPassword: serverPW,
		Password: "right-pw", MaxViewers: 16, FailDelay: delay, OnRefused: ref.add, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second) // how long the attack runs
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 16 {
		ip := fmt.Sprintf("127.0.0.%d", 10+i)
		wg.Go(func() {
			for ctx.Err() == nil {
				guessOnce(ctx, srv, ip)
			}
		})
	}
	wg.Wait()
	srv.CloseClientConnections()
	h.Close() // every check is over and reported
	elapsed := time.Since(start)
	window := guessWindow * delay
	bound := guessLimit * (int(elapsed/window) + 1)
	n := ref.get("password")
	if n != int(h.guesses.wrongAnswers()) {
		t.Errorf("%d wrong passwords reported, the limiter counted %d", n, h.guesses.wrongAnswers())
	}
	if n > bound {
		t.Errorf("16 parallel guessers had %d wrong answers in %v, want at most %d (%d per %v)", n, elapsed, bound, guessLimit, window)
	}
	if n == 0 {
		t.Error("no wrong answer was checked at all")
	}
	t.Logf("%d wrong answers in %v (bound %d)", n, elapsed.Round(time.Millisecond), bound)
}

// TestRightPasswordWhileOthersGuess: while 16 guessers from one address
// keep the logins in progress over their cap (4), a person at another
// address who sits at the password prompt is not cut to make room, and
// their right password is checked and accepted while the guessers are
// being held back.
func TestRightPasswordWhileOthersGuess(t *testing.T) {
	var ref refusals
	_, srv := startServer(t, Config{VNCAddr: slowRFBServer(t, 0), StaticDir: fakeNoVNC(t), ServerPassword: serverPW,
		Password: "right-pw", MaxViewers: 4, FailDelay: 50 * time.Millisecond, OnRefused: ref.add, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				guessOnce(ctx, srv, "127.0.0.1")
			}
		})
	}
	for round := range 3 {
		c, err := dialFrom(t.Context(), srv, "127.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		challenge, _ := toPasswordPrompt(t, c)
		// The person types while the guessers go on: 20 guesser
		// connections cut to make room for newer ones.
		seen := ref.get("evicted")
		waitFor(t, "20 more logins cut", func() bool { return ref.get("evicted") >= seen+20 })
		if got := answer(t, c, "right-pw", challenge); got != 0 {
			t.Fatalf("round %d: SecurityResult %d for the right password from another address, want 0 (OK)", round, got)
		}
		c.Close()
	}
}

// TestLoginsEvictionPrefersTheBusiestAddress: over the cap, the place is
// taken from the address holding the most logins, even from its logins
// still in the machine-paced steps before an older one of another address
// at the prompt, so one address's flood makes room among itself.
func TestLoginsEvictionPrefersTheBusiestAddress(t *testing.T) {
	var q logins
	person := &login{start: time.Now(), addr: "192.0.2.7", end: func() {}}
	q.add(person, 4)
	q.awaitPassword(person)
	var flood []*login
	for range 3 {
		l := &login{start: time.Now(), addr: "10.0.0.1", end: func() {}}
		flood = append(flood, l)
		q.add(l, 4)
		q.awaitPassword(l)
	}
	fresh := &login{start: time.Now(), addr: "10.0.0.1", end: func() {}}
	if ev := q.add(fresh, 4); ev != flood[0] {
		t.Fatalf("evicted %v, want the busiest address's oldest (%v), not the person at the prompt", ev, flood[0])
	}
	// Machine-paced before at the prompt, within the busiest address.
	if ev := q.add(&login{start: time.Now(), addr: "10.0.0.1", end: func() {}}, 4); ev != fresh {
		t.Fatalf("evicted %v, want the busiest address's login still in the machine-paced steps", ev)
	}
	if q.remove(person) {
		t.Error("the person at another address was evicted")
	}
}
