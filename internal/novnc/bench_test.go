package novnc

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/rfbclient"
)

// The bench compares three paths to the same x11vnc, one sub-benchmark each,
// so that `-count N` interleaves them:
//
//	direct      TCP straight to x11vnc
//	bridge      this package's /websockify, in a separate process (the test
//	            binary re-executed as a helper), so its CPU is measured like
//	            websockify's: from /proc, apart from the client
//	websockify  Debian's python websockify
//	inproc      this package's Handler inside the benchmark process; its
//	            CPU figure (proc-ms/MB) includes the client's
//
// Each iteration asks for a non-incremental full-screen update and reads
// it as raw pixels (1440x900x32bpp = 5.2 MB by default).
//
//	go test -run '^$' -bench Framebuffer -count 5 ./internal/novnc

// helperEnv makes the test binary serve the Handler instead of testing.
const helperEnv = "SCRY_NOVNC_BENCH_BRIDGE"

func TestMain(m *testing.M) {
	if addr := os.Getenv(helperEnv); addr != "" {
		if err := serveHelper(addr); err != nil {
			fmt.Fprintln(os.Stderr, "bridge helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveHelper serves the Handler for vncAddr on a loopback port it prints
// on stdout, until stdin closes.
func serveHelper(vncAddr string) error {
	if n, _ := strconv.Atoi(os.Getenv("SCRY_NOVNC_BENCH_BUF")); n > 0 {
		copyBufSize = n
	}
	h, err := New(Config{StaticDir: os.Getenv("SCRY_NOVNC_BENCH_STATIC"), VNCAddr: vncAddr})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	if path := os.Getenv("SCRY_NOVNC_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Println(ln.Addr().String())
	bufio.NewReader(os.Stdin).ReadString('\n') // EOF when the benchmark ends
	srv.Close()
	return h.Close()
}

// startProc starts a bridge process and returns its pid; it is stopped at
// cleanup.
func startProc(b *testing.B, cmd *exec.Cmd) {
	b.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	b.Cleanup(func() { stopChild(b, cmd, exited) })
}

func startBridgeHelper(b *testing.B, vncAddr string) (addr string, pid int) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+vncAddr, "SCRY_NOVNC_BENCH_STATIC="+fakeNoVNC(b))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	startProc(b, cmd)
	b.Cleanup(func() { stdin.Close() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bridge helper: %v", err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid
}

func startWebsockify(b *testing.B, vncAddr string) (addr string, pid int) {
	b.Helper()
	if _, err := exec.LookPath("websockify"); err != nil {
		b.Skip("websockify not installed: apt-get install websockify")
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(b)))
	cmd := exec.Command("websockify", addr, vncAddr)
	startProc(b, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return addr, cmd.Process.Pid
		}
		if ctx.Err() != nil {
			b.Fatalf("websockify not listening on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a port that is not up yet
	}
}

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat times.
const clockTick = 10 * time.Millisecond

// treeCPU returns the user+system CPU time of pid and its descendants
// (websockify forks a process per connection).
func treeCPU(pid int) time.Duration {
	type stat struct{ ppid, ticks int }
	procs := map[int]stat{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
		if len(f) < 13 {
			continue
		}
		id, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		procs[id] = stat{ppid, ut + st}
	}
	var total int
	var walk func(int)
	walk = func(p int) {
		total += procs[p].ticks
		for id, s := range procs {
			if s.ppid == p {
				walk(id)
			}
		}
	}
	walk(pid)
	return time.Duration(total) * clockTick
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func x11vncPid(b *testing.B, port int) int {
	b.Helper()
	out, err := exec.Command("pgrep", "-f", "-n", "x11vnc.*-rfbport "+strconv.Itoa(port)+" ").Output()
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return pid
}

func BenchmarkFramebuffer(b *testing.B) {
	w, h := 1440, 900
	if s := os.Getenv("SCRY_BENCH_SCREEN"); s != "" {
		fmt.Sscanf(s, "%dx%d", &w, &h)
	}
	display := startXvfb(b, w, h)
	// x11vnc polls every 20 ms by default, which quantises frame times to
	// 20 ms steps and hides the transport; poll as fast as it can instead.
	vncAddr, _ := runX11vnc(b, display, "", freePort(b), "-nonap", "-wait", "1", "-defer", "1")
	_, p, _ := net.SplitHostPort(vncAddr)
	port, _ := strconv.Atoi(p)
	vncPid := x11vncPid(b, port)

	bridgeAddr, bridgePid := startBridgeHelper(b, vncAddr)
	wsfyAddr, wsfyPid := startWebsockify(b, vncAddr)
	inproc, err := New(Config{StaticDir: fakeNoVNC(b), VNCAddr: vncAddr})
	if err != nil {
		b.Fatal(err)
	}
	inprocSrv := httptest.NewServer(inproc)
	b.Cleanup(func() { inprocSrv.Close(); inproc.Close() })

	type path struct {
		name string
		dial func(ctx context.Context) (net.Conn, error)
		pid  int // the bridge process, 0 for none or in-process
	}
	wsDial := func(addr string) func(ctx context.Context) (net.Conn, error) {
		return func(ctx context.Context) (net.Conn, error) {
			c, _, err := dialViewer(ctx, &httptest.Server{URL: "http://" + addr})
			return c, err
		}
	}
	paths := []path{
		{"direct", func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", vncAddr)
		}, 0},
		{"bridge", wsDial(bridgeAddr), bridgePid},
		{"websockify", wsDial(wsfyAddr), wsfyPid},
		{"inproc", wsDial(strings.TrimPrefix(inprocSrv.URL, "http://")), 0},
	}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			conn, err := p.dial(ctx)
			if err != nil {
				b.Fatalf("dial: %v", err)
			}
			defer conn.Close()
			c, err := rfbclient.Handshake(ctx, conn, rfbclient.Config{})
			if err != nil {
				b.Fatalf("handshake: %v", err)
			}
			if err := c.SetEncodings(rfbclient.EncodingRaw); err != nil {
				b.Fatal(err)
			}
			frame := int64(c.Width) * int64(c.Height) * int64(c.PixelFormat.BytesPerPixel())
			b.SetBytes(frame)
			readFrame := func() {
				if err := c.RequestFull(); err != nil {
					b.Fatal(err)
				}
				var got int64
				for got < frame {
					rects, err := c.ReadUpdate(ctx)
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range rects {
						got += int64(len(r.Data))
					}
				}
			}
			readFrame() // warm up: x11vnc's first full update is slower

			b.ResetTimer()
			self0, br0, vnc0 := selfCPU(), treeCPU(p.pid), treeCPU(vncPid)
			for range b.N {
				readFrame()
			}
			b.StopTimer()
			mb := float64(frame) * float64(b.N) / 1e6
			perMB := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / mb }
			b.ReportMetric(perMB(selfCPU()-self0), "proc-ms/MB")
			if p.pid != 0 {
				b.ReportMetric(perMB(treeCPU(p.pid)-br0), "bridge-ms/MB")
			}
			if vncPid != 0 {
				b.ReportMetric(perMB(treeCPU(vncPid)-vnc0), "x11vnc-ms/MB")
			}
		})
	}
}
