package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/dataplanelabs/scry/internal/rfbclient"
)

// checkVNC logs in to scry's human door at wsURL as noVNC does: a wrong
// password must be refused, the right one must reach x11vnc (ServerInit
// with the screen's size, then a framebuffer update).
func checkVNC(ctx context.Context, wsURL, password string, width, height int) error {
	// "x" first: VNC uses only the first 8 bytes of a password.
	if _, err := vncLogin(ctx, wsURL, "x"+password); !errors.As(err, new(*rfbclient.AuthError)) {
		return fmt.Errorf("a wrong password: want an authentication failure, got %v", err)
	}
	c, err := vncLogin(ctx, wsURL, password)
	if err != nil {
		return fmt.Errorf("the right password: %w", err)
	}
	defer c.Close()
	if int(c.Width) != width || int(c.Height) != height {
		return fmt.Errorf("screen %dx%d, want %dx%d", c.Width, c.Height, width, height)
	}
	if err := c.SetEncodings(rfbclient.EncodingRaw); err != nil {
		return err
	}
	if err := c.RequestFull(); err != nil {
		return err
	}
	if _, err := c.ReadUpdate(ctx); err != nil {
		return fmt.Errorf("framebuffer update: %w", err)
	}
	fmt.Printf("vnc: logged in through %s, screen %dx%d, security type %d\n", wsURL, c.Width, c.Height, c.Security)
	return nil
}

// checkVNCServerClosed connects to x11vnc's own port (inside the container)
// and fails unless it offers VNC authentication only: scry's random
// password, never None.
func checkVNCServerClosed(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := rfbclient.Handshake(ctx, conn, rfbclient.Config{})
	if err == nil {
		c.Close()
		return fmt.Errorf("x11vnc at %s let a client in without a password (offered %v)", addr, c.SecurityTypes)
	}
	if !errors.Is(err, rfbclient.ErrPasswordRequired) {
		return fmt.Errorf("x11vnc at %s: %w", addr, err)
	}
	fmt.Printf("vnc-server: %s requires a password\n", addr)
	return nil
}

func vncLogin(ctx context.Context, wsURL, password string) (*rfbclient.Client, error) {
	return rfbclient.DialWebSocket(ctx, wsURL, rfbclient.Config{Password: password})
}
