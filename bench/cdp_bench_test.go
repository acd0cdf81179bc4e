package bench

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// BenchmarkCDPPaths runs the interleaved harness once, whatever b.N is,
// prints the comparison table, and reports each path's figures as custom
// metrics of a sub-benchmark so benchstat can compare runs:
//
//	go test -run '^$' -bench . -benchtime=1x ./bench/
//
// It skips when Chromium or Xvfb is missing or scry does not build.
func BenchmarkCDPPaths(b *testing.B) {
	o, err := OptionsFromEnv()
	if err != nil {
		b.Fatal(err)
	}
	o.Progress = os.Stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if errors.Is(err, ErrUnavailable) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	rep.WriteTable(os.Stdout)
	base := rep.Results[0].Summary()
	for _, res := range rep.Results {
		s := res.Summary()
		b.Run("path="+res.Path.Name, func(b *testing.B) {
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(s.FreshP50)/1e3, "fresh-p50-µs")
			b.ReportMetric(float64(s.FreshP99)/1e3, "fresh-p99-µs")
			b.ReportMetric(float64(s.EvalP50)/1e3, "eval-p50-µs")
			b.ReportMetric(float64(s.EvalP95)/1e3, "eval-p95-µs")
			b.ReportMetric(float64(s.EvalP99)/1e3, "eval-p99-µs")
			b.ReportMetric(s.ShotMBps, "shot-MB/s")
			b.ReportMetric(s.ShotsPerSec, "shots/s")
			if res != rep.Results[0] {
				b.ReportMetric(ratio(s.FreshP50, base.FreshP50), "fresh-p50-x")
				b.ReportMetric(ratio(s.EvalP50, base.EvalP50), "eval-p50-x")
				b.ReportMetric(s.ShotMBps/base.ShotMBps, "shot-MB/s-x")
			}
			if admin := rep.Result("scry"); res.Path.Name == "agent" && admin != nil {
				a := admin.Summary()
				b.ReportMetric(ratio(s.EvalP50, a.EvalP50), "eval-p50-x-admin")
				b.ReportMetric(ratio(s.EvalP95, a.EvalP95), "eval-p95-x-admin")
			}
		})
	}
}
