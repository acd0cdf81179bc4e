package supervise

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/scrytest"
)

// logBuffer collects JSON log records from several goroutines.
type logBuffer struct{ scrytest.LogBuffer }

// contains reports whether the raw log output contains s.
func (b *logBuffer) contains(s string) bool { return strings.Contains(b.String(), s) }

// has reports whether some record's message is msg.
func (b *logBuffer) has(t *testing.T, msg string) bool {
	t.Helper()
	for _, r := range b.Records(t) {
		if r["msg"] == msg {
			return true
		}
	}
	return false
}

func newLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	t.Helper()
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// startSh starts `/bin/sh -c script` as a supervised child and makes sure
// it is gone when the test ends.
func startSh(t *testing.T, log *slog.Logger, script string) *Process {
	t.Helper()
	p, err := Start(Spec{Name: "fake", Path: "/bin/sh", Args: []string{"-c", script}, Logger: log})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { p.killGroup(); <-p.Done() })
	return p
}

// waitDone waits for the child to exit.
func waitDone(t *testing.T, p *Process) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("child %d did not exit", p.Pid())
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readPid waits for a child to write a pid to path.
func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// gone reports whether pid has exited: no such process, or a zombie
// waiting for PID 1 to reap it.
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		code    int
		errText string // "" means Err is nil
	}{
		{"success", "exit 0", 0, ""},
		{"status 3", "exit 3", 3, "fake exited with status 3"},
		{"status 255", "exit 255", 255, "status 255"},
		{"SIGTERM", "kill -TERM $$", 128 + int(syscall.SIGTERM), "killed by signal terminated"},
		{"SIGKILL", "kill -KILL $$", 128 + int(syscall.SIGKILL), "killed by signal killed"},
		{"SIGSEGV", "kill -SEGV $$", 128 + int(syscall.SIGSEGV), "killed by signal segmentation fault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, _ := newLogger(t)
			p := startSh(t, log, tt.script)
			waitDone(t, p)
			if got := p.ExitCode(); got != tt.code {
				t.Errorf("ExitCode() = %d, want %d", got, tt.code)
			}
			err := p.Err()
			switch {
			case tt.errText == "" && err != nil:
				t.Errorf("Err() = %v, want nil", err)
			case tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText)):
				t.Errorf("Err() = %v, want it to mention %q", err, tt.errText)
			}
			if !p.Exited() {
				t.Error("Exited() = false after Done")
			}
		})
	}
}

func TestExitCodeNilState(t *testing.T) {
	if got := ExitCode(nil); got != 1 {
		t.Errorf("ExitCode(nil) = %d, want 1", got)
	}
}

func TestStartMissingBinary(t *testing.T) {
	_, err := Start(Spec{Name: "ghost", Path: filepath.Join(t.TempDir(), "no-such-binary")})
	if err == nil || !strings.Contains(err.Error(), "start ghost") {
		t.Fatalf("Start = %v, want an error naming the child", err)
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name   string
		script string // prints "ready" once its signal handling is set up
		code   int
		killed bool // Stop had to SIGKILL after grace
	}{
		{"polite child", "echo ready; exec sleep 1000", 128 + int(syscall.SIGTERM), false},
		{"shell waiting on a child", "sleep 1000 & echo ready; wait", 128 + int(syscall.SIGTERM), false},
		{"traps SIGTERM and carries on", "trap 'echo got-term' TERM; echo ready; while :; do sleep 1; done", 128 + int(syscall.SIGKILL), true},
		{"ignores SIGTERM", "trap '' TERM; echo ready; exec sleep 1000", 128 + int(syscall.SIGKILL), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newLogger(t)
			p := startSh(t, log, tt.script)
			waitFor(t, "the child to be ready", func() bool { return logs.has(t, "ready") })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p.Stop(ctx, 300*time.Millisecond); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if !p.Exited() {
				t.Fatal("Stop returned before the child was reaped")
			}
			if got := p.ExitCode(); got != tt.code {
				t.Errorf("ExitCode() = %d, want %d (%v)", got, tt.code, p.Err())
			}
			if got := logs.has(t, "did not stop in time, killing"); got != tt.killed {
				t.Errorf("logged the kill after grace: %v, want %v", got, tt.killed)
			}
			// Stopping again is harmless.
			if err := p.Stop(ctx, time.Second); err != nil {
				t.Errorf("second Stop: %v", err)
			}
		})
	}
}

func TestStopCancelledContextKills(t *testing.T) {
	log, logs := newLogger(t)
	p := startSh(t, log, "trap '' TERM; echo ready; exec sleep 1000")
	waitFor(t, "the child to be ready", func() bool { return logs.has(t, "ready") })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Stop(ctx, time.Hour); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got := p.ExitCode(); got != 128+int(syscall.SIGKILL) {
		t.Errorf("ExitCode() = %d, want SIGKILL's", got)
	}
}

func TestStopReachesGrandchildren(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"grandchild dies on SIGTERM", `sleep 1000 & echo $! > "$PIDFILE"; wait`},
		// The leader exits on SIGTERM; the grandchild ignores it and is
		// only reached by the SIGKILL to the group after the leader went.
		{"grandchild ignores SIGTERM", `(trap '' TERM; exec sleep 1000) & echo $! > "$PIDFILE"; wait`},
		{"grandchild outlives its parent", `(sleep 1000 & echo $! > "$PIDFILE") ; trap '' TERM; while :; do sleep 1; done`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "grandchild.pid")
			log, _ := newLogger(t)
			p, err := Start(Spec{
				Name: "fake", Path: "/bin/sh", Args: []string{"-c", tt.script},
				Env: append(os.Environ(), "PIDFILE="+pidfile), Logger: log,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.killGroup(); <-p.Done() })
			grandchild := readPid(t, pidfile)
			if gone(grandchild) {
				t.Fatalf("grandchild %d is not running", grandchild)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p.Stop(ctx, 300*time.Millisecond); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			waitFor(t, fmt.Sprintf("grandchild %d to die", grandchild), func() bool { return gone(grandchild) })
		})
	}
}

func TestSignal(t *testing.T) {
	log, logs := newLogger(t)
	p := startSh(t, log, "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 1; done")
	waitFor(t, "the child to be ready", func() bool { return logs.has(t, "ready") })
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	if !logs.has(t, "got-usr1") || p.ExitCode() != 7 {
		t.Errorf("child did not handle SIGUSR1: code %d", p.ExitCode())
	}
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		t.Errorf("Signal after exit = %v, want nil", err)
	}
}

// rec is one logged output line.
type rec struct{ level, msg, stream string }

func TestOutputLogged(t *testing.T) {
	classify := func(line string) slog.Level {
		switch {
		case strings.Contains(line, "FATAL"):
			return slog.LevelError
		case strings.Contains(line, "chatter"):
			return slog.LevelDebug
		}
		return slog.LevelInfo
	}
	tests := []struct {
		name     string
		script   string
		level    slog.Level
		classify func(string) slog.Level
		want     []rec
	}{
		{
			name:   "streams and last line without newline",
			script: `echo out-line; echo err-line >&2; printf '\n  \n'; printf 'crlf\r\n'; printf no-newline`,
			want: []rec{
				{"INFO", "out-line", "stdout"},
				{"INFO", "err-line", "stderr"},
				{"INFO", "crlf", "stdout"},
				{"INFO", "no-newline", "stdout"},
			},
		},
		{
			name:   "output level",
			script: `echo a; echo b >&2`,
			level:  slog.LevelWarn,
			want:   []rec{{"WARN", "a", "stdout"}, {"WARN", "b", "stderr"}},
		},
		{
			name:     "classify",
			script:   `echo '[1:2:FATAL:x.cc] boom' >&2; echo 'dbus chatter' >&2; echo plain`,
			level:    slog.LevelWarn,
			classify: classify,
			want: []rec{
				{"ERROR", "[1:2:FATAL:x.cc] boom", "stderr"},
				{"DEBUG", "dbus chatter", "stderr"},
				{"INFO", "plain", "stdout"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newLogger(t)
			p, err := Start(Spec{
				Name: "chatty", Path: "/bin/sh", Args: []string{"-c", tt.script},
				Logger: log, OutputLevel: tt.level, Classify: tt.classify,
			})
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, p)
			var got []rec
			for _, r := range logs.Records(t) {
				stream, ok := r["stream"].(string)
				if !ok {
					continue // the supervisor's own records
				}
				if r["proc"] != "chatty" {
					t.Errorf("record %v not tagged proc=chatty", r)
				}
				got = append(got, rec{r["level"].(string), r["msg"].(string), stream})
			}
			// The two streams are read concurrently: compare per stream.
			for _, stream := range []string{"stdout", "stderr"} {
				if g, w := only(got, stream), only(tt.want, stream); fmt.Sprint(g) != fmt.Sprint(w) {
					t.Errorf("%s records:\n got %v\nwant %v", stream, g, w)
				}
			}
		})
	}
}

func only(rs []rec, stream string) []rec {
	var out []rec
	for _, r := range rs {
		if r.stream == stream {
			out = append(out, r)
		}
	}
	return out
}

// TestLongLineChunked checks that output without newlines is logged in
// pieces no longer than maxLine, losing nothing.
func TestLongLineChunked(t *testing.T) {
	const size = 5*maxLine + 123
	tests := []struct {
		name    string
		newline bool
	}{
		{"no newline at all", false},
		{"one long line", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newLogger(t)
			script := fmt.Sprintf("head -c %d /dev/zero | tr '\\0' a", size)
			if tt.newline {
				script += "; echo"
			}
			p, err := Start(Spec{Name: "long", Path: "/bin/sh", Args: []string{"-c", script}, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, p)
			checkChunks(t, logs.Records(t), size)
		})
	}
}

// TestLineWriterChunksLargeWrites drives the line writer directly with
// writes larger than maxLine, as a pipe read can deliver them.
func TestLineWriterChunksLargeWrites(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
	}{
		{"one big write", []string{strings.Repeat("a", 3*maxLine+5)}},
		{"one big line", []string{strings.Repeat("a", 3*maxLine+5) + "\n"}},
		{"small then big", []string{"aaaa", strings.Repeat("a", 2*maxLine)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newLogger(t)
			w := newLineWriter(log, slog.LevelInfo, nil, "stdout", nil)
			total := 0
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
				total += len(strings.TrimSuffix(s, "\n"))
			}
			w.Flush()
			checkChunks(t, logs.Records(t), total)
		})
	}
}

// checkChunks asserts that the records carry size 'a's in pieces of at
// most maxLine.
func checkChunks(t *testing.T, records []map[string]any, size int) {
	t.Helper()
	total, pieces := 0, 0
	for _, r := range records {
		msg, _ := r["msg"].(string)
		if r["stream"] == nil {
			continue
		}
		if strings.Trim(msg, "a") != "" {
			t.Fatalf("unexpected record %q", msg)
		}
		if len(msg) > maxLine {
			t.Errorf("record of %d bytes, longer than maxLine %d", len(msg), maxLine)
		}
		total += len(msg)
		pieces++
	}
	if total != size {
		t.Errorf("logged %d bytes in %d records, want %d", total, pieces, size)
	}
	if pieces < 2 {
		t.Errorf("a %d-byte line was logged in %d record(s)", size, pieces)
	}
}

func TestLastOutputKeepsTheLastLines(t *testing.T) {
	log, _ := newLogger(t)
	p := startSh(t, log, "for i in 1 2 3 4 5 6 7; do echo line$i; done; printf '%0400d' 0 >&2")
	<-p.Done()
	got := p.LastOutput()
	want := []string{"line4", "line5", "line6", "line7"}
	if len(got) != tailLines || strings.Join(got[:4], ",") != strings.Join(want, ",") {
		t.Fatalf("LastOutput = %q, want %q then the long line", got, want)
	}
	if last := got[4]; len(last) > tailLineLen+len("…") || !strings.HasSuffix(last, "…") {
		t.Errorf("long line kept as %d bytes %q..., want it cut to %d and marked", len(last), last[:20], tailLineLen)
	}
}

func TestAfterExitRunsBeforeDone(t *testing.T) {
	log, _ := newLogger(t)
	var got atomic.Int64
	p, err := Start(Spec{Name: "fake", Path: "/bin/sh", Args: []string{"-c", "exit 0"}, Logger: log,
		AfterExit: func(pid int) { got.Store(int64(pid)) }})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if got.Load() != int64(p.Pid()) {
		t.Fatalf("AfterExit saw pid %d by Done, want %d", got.Load(), p.Pid())
	}
}
