// Package scrytest runs the real scry binary for the integration tests, the
// benchmarks and the soak: one way to build it, start it on ports nobody
// else can take, wait for it, read its log records and stop it, plus one
// poll helper and one small CDP client.
//
// The doors bind port 0 and the harness reads their addresses from scry's
// "agent door open" and "human door open" records. Chromium's and x11vnc's
// loopback ports (CDP_INTERNAL_PORT, VNC_PORT) are picked by the harness and
// held until scry stops (see Reserve); the X display is picked free and a
// start that lost it to someone else is retried (see Run).
package scrytest
