package door

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestServeThenClose(t *testing.T) {
	s := &Server{
		Addr:    "127.0.0.1:0",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		Grace:   time.Second,
	}
	ran := make(chan error, 1)
	go func() { ran <- s.Run(context.Background()) }()
	select {
	case <-s.Ready():
	case err := <-ran:
		t.Fatalf("Run ended before ready: %v", err)
	}
	resp, err := http.Get("http://" + s.Address() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Errorf("body %q, want ok", b)
	}
	s.Close(context.Background())
	if err := <-ran; err != nil {
		t.Errorf("Run after Close: %v, want nil", err)
	}
	if _, err := net.Dial("tcp", s.Address()); err == nil {
		t.Error("still accepting after Close")
	}
}

// A door that cannot listen says so from Run, and is never ready.
func TestRunFailsWhenPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Server{Addr: l.Addr().String(), Handler: http.NotFoundHandler()}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("Run listened on a taken port")
	}
	select {
	case <-s.Ready():
		t.Error("ready without listening")
	default:
	}
	s.Close(context.Background()) // a no-op, and must not block
}

// The run context ending stops the door too.
func TestRunStopsWithContext(t *testing.T) {
	s := &Server{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler(), Grace: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	<-s.Ready()
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run after its context ended: %v, want nil", err)
	}
}
