// Package soak holds scry's soak harness: one scry holding hundreds of idle
// CDP WebSockets while dozens of clients drive their own tabs, for minutes,
// reporting drops, errors and memory. It is slow, so it is built only with
// the soak tag and never runs in `go test ./...`:
//
//	go test -tags soak -run TestSoak -v -timeout 60m ./soak/
//
// See docs/soak.md for the knobs and the figures from a run.
package soak
