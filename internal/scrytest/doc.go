// Package scrytest runs the real scry binary for the integration tests, the
// benchmarks and the soak: one way to build it, start it on ports nobody
// else can take, wait for it, read its log records and stop it, plus one
// poll helper and one small CDP client.
//
// The agent door binds port 0 and the harness reads its address from
// scry's "agent door open" record (the human door's, likewise, from "human
// door open"). The other ports — Chromium's and x11vnc's loopback ports
// (CDP_INTERNAL_PORT, VNC_PORT), which scry cannot report before those
// programs bind them, and NOVNC_PORT, from which handoff links are built —
// are picked by the harness and held until scry stops (see Reserve); the X
// display is picked free and a start that lost it to someone else is
// retried (see Run).
package scrytest
