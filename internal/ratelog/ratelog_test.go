package ratelog

import (
	"sync"
	"testing"
	"time"
)

func TestBurstThenOnePerInterval(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(3, time.Second)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, n := l.Allow("host"); !ok || n != 0 {
			t.Fatalf("record %d of the burst: ok=%v suppressed=%d", i, ok, n)
		}
	}
	for range 5 {
		if ok, _ := l.Allow("host"); ok {
			t.Fatal("a record past the burst was let through at once")
		}
	}
	// Another key has its own bucket.
	if ok, _ := l.Allow("token"); !ok {
		t.Fatal("a different key was held back")
	}
	now = now.Add(time.Second)
	if ok, n := l.Allow("host"); !ok || n != 5 {
		t.Fatalf("after an interval: ok=%v suppressed=%d, want true 5", ok, n)
	}
	if ok, _ := l.Allow("host"); ok {
		t.Fatal("two records let through in one interval after the burst")
	}
	// A long quiet spell refills the burst, no more.
	now = now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow("host"); !ok {
			t.Fatalf("refilled burst record %d held back", i)
		}
	}
	if ok, _ := l.Allow("host"); ok {
		t.Fatal("the bucket refilled beyond its burst")
	}
}

func TestKeysAreBounded(t *testing.T) {
	l := New(1, time.Hour)
	for i := range 10 * maxKeys {
		l.Allow(string(rune('a' + i)))
	}
	if n := len(l.keys); n > maxKeys+1 {
		t.Fatalf("%d buckets, want at most %d", n, maxKeys+1)
	}
}

func TestConcurrent(t *testing.T) {
	l := New(10, time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if ok, _ := l.Allow("k"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("%d records allowed from 800 at once, want the burst of 10", allowed)
	}
}
