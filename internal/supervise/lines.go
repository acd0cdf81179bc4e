package supervise

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// maxLine bounds one logged line so a child printing without newlines
// cannot grow scry's memory.
const maxLine = 8 << 10

// lineWriter turns a child's output stream into one log record per line,
// tagged with the process name and the stream.
type lineWriter struct {
	mu       sync.Mutex
	log      *slog.Logger
	level    slog.Level
	classify func(string) slog.Level
	stream   string
	buf      []byte
	tail     *tail
}

func newLineWriter(log *slog.Logger, level slog.Level, classify func(string) slog.Level, stream string, t *tail) *lineWriter {
	return &lineWriter{log: log, level: level, classify: classify, stream: stream, tail: t}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		// A line longer than maxLine goes out in maxLine pieces.
		if room := maxLine - len(w.buf); len(part) >= room {
			w.buf = append(w.buf, part[:room]...)
			w.emit(w.buf)
			w.buf = w.buf[:0]
			p = p[room:]
			continue
		}
		w.buf = append(w.buf, part...)
		if i < 0 {
			break
		}
		w.emit(w.buf)
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Flush logs a last line that had no newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	level := w.level
	if w.classify != nil {
		level = w.classify(string(line))
	}
	w.log.Log(context.Background(), level, string(line), "stream", w.stream)
	if w.tail != nil {
		w.tail.add(line)
	}
}

// Bounds of a child's remembered last output.
const (
	tailLines   = 5
	tailLineLen = 300
)

// tail remembers the last tailLines lines a child printed on either stream.
type tail struct {
	mu   sync.Mutex
	ring [tailLines]string
	n    int // lines added so far
}

func (t *tail) add(line []byte) {
	if len(line) > tailLineLen {
		line = append(line[:tailLineLen:tailLineLen], "…"...)
	}
	t.mu.Lock()
	t.ring[t.n%tailLines] = string(line)
	t.n++
	t.mu.Unlock()
}

func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := min(t.n, tailLines)
	out := make([]string, 0, k)
	for i := t.n - k; i < t.n; i++ {
		out = append(out, t.ring[i%tailLines])
	}
	return out
}
