// Command cdpbench compares CDP latency and throughput direct to Chromium,
// through scry and through socat, on one Chromium, interleaved. Run it from
// the module root:
//
//	go run ./bench/cmd/cdpbench [-n 1000] [-conns N] [-evals N] [-shots N]
//
// Flags default to the SCRY_BENCH_* environment (see package bench).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/dataplanelabs/scry/bench"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cdpbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	o, err := bench.OptionsFromEnv()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("cdpbench", flag.ContinueOnError)
	n := fs.Int("n", 0, "base iteration count: evals=n, conns=n/5, shots=max(n/33,10)")
	fs.IntVar(&o.Conns, "conns", o.Conns, "fresh connections per path")
	fs.IntVar(&o.Evals, "evals", o.Evals, "Runtime.evaluate round-trips per path")
	fs.IntVar(&o.Shots, "shots", o.Shots, "screenshots per path")
	cpuprofile := fs.String("cpuprofile", "", "write the bench client's CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n > 0 {
		d := bench.Defaults(*n)
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["conns"] {
			o.Conns = d.Conns
		}
		if !set["evals"] {
			o.Evals = d.Evals
		}
		if !set["shots"] {
			o.Shots = d.Shots
		}
	}
	o.Progress = os.Stderr
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// Ctrl-C cancels the run; Run still stops scry and socat on the way out.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	rep.WriteTable(os.Stdout)
	return nil
}
