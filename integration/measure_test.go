package integration

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/rfbclient"
)

// TestMeasureHardKillLoss is a measurement, not a pass/fail test: it logs
// into the test site, kills everything with SIGKILL after a delay (with the
// login tab closed first, or still open), restarts and reports what
// survived. Run it with
//
//	SCRY_MEASURE=1 go test -v -run TestMeasureHardKillLoss ./integration/
//
// SCRY_MEASURE_OUT=DIR also saves the screen after each restart as a PNG,
// to see whether Chromium greets the user with a "Restore pages?" bubble.
func TestMeasureHardKillLoss(t *testing.T) {
	if os.Getenv("SCRY_MEASURE") == "" {
		t.Skip("measurement; set SCRY_MEASURE=1 to run")
	}
	site := loginSite(t)
	type row struct {
		tab   string
		delay time.Duration
		seen  map[string]bool
	}
	var rows []row
	// The login tab is either closed once the login is stored (as an
	// agent that disconnects does) or still open at the kill (as a
	// person's tab, or an agent that stays on the page).
	for _, tabOpen := range []bool{false, true} {
		for _, delay := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 10 * time.Second, 35 * time.Second} {
			s := Start(t, Options{})
			closeTab := loginInTab(t, s, site.URL)
			tab := "open"
			if !tabOpen {
				closeTab()
				tab = "closed"
			}
			time.Sleep(delay) // the delay is the quantity measured
			killEverything(t, s)
			closeTab()
			s2 := Start(t, Options{ProfileDir: s.ProfileDir})
			rows = append(rows, row{tab, delay, status(t, s2, site.URL)})
			if dir := os.Getenv("SCRY_MEASURE_OUT"); dir != "" {
				saveScreen(t, s2, filepath.Join(dir, fmt.Sprintf("after-kill-%s-tab-%s.png", delay, tab)))
			}
			s2.Stop()
		}
	}
	kinds := []string{"persist", "sid", "hsid", "localStorage", "indexedDB"}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| login tab | SIGKILL after login | %s |\n|---|---|%s\n", strings.Join(kinds, " | "), strings.Repeat("---|", len(kinds)))
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s |", r.tab, r.delay)
		for _, k := range kinds {
			mark := "lost"
			if r.seen[k] {
				mark = "kept"
			}
			fmt.Fprintf(&b, " %s |", mark)
		}
		b.WriteString("\n")
	}
	t.Log(b.String())
}

// saveScreen grabs the whole X screen through scry's VNC bridge as a PNG.
func saveScreen(t *testing.T, s *Scry, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := viewer(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.SetEncodings(rfbclient.EncodingRaw); err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, int(v.Width), int(v.Height)))
	pf := v.PixelFormat
	covered := 0
	for covered < int(v.Width)*int(v.Height) {
		if err := v.RequestFull(); err != nil {
			t.Fatal(err)
		}
		rects, err := v.ReadUpdate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rects {
			if r.Encoding != rfbclient.EncodingRaw {
				continue
			}
			bpp := pf.BytesPerPixel()
			for y := 0; y < int(r.H); y++ {
				for x := 0; x < int(r.W); x++ {
					off := (y*int(r.W) + x) * bpp
					var px uint32
					for i := 0; i < bpp; i++ {
						if pf.BigEndian {
							px = px<<8 | uint32(r.Data[off+i])
						} else {
							px |= uint32(r.Data[off+i]) << (8 * i)
						}
					}
					img.Set(int(r.X)+x, int(r.Y)+y, color.RGBA{
						R: uint8(px >> pf.RedShift & uint32(pf.RedMax)),
						G: uint8(px >> pf.GreenShift & uint32(pf.GreenMax)),
						B: uint8(px >> pf.BlueShift & uint32(pf.BlueMax)),
						A: 255,
					})
				}
			}
			covered += int(r.W) * int(r.H)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}
