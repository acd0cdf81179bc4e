package vnc

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestArgs(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		want    []string
		wantNot []string
	}{
		{
			name:    "no password",
			opts:    Options{Display: ":99", Port: 5900},
			want:    []string{"-display :99", "-rfbport 5900", "-localhost", "-listen 127.0.0.1", "-shared", "-forever", "-nopw", "-noxdamage"},
			wantNot: []string{"-rfbauth", "-passwd", "-passwdfile"},
		},
		{
			name:    "password file",
			opts:    Options{Display: ":1", Port: 5901, PasswordFile: "/run/scry/vncpasswd", XDamage: true},
			want:    []string{"-rfbauth /run/scry/vncpasswd", "-localhost", "-listen 127.0.0.1"},
			wantNot: []string{"-nopw", "-passwd", "-noxdamage"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := Args(tt.opts)
			line := " " + strings.Join(args, " ") + " "
			for _, w := range tt.want {
				if !strings.Contains(line, " "+w+" ") {
					t.Errorf("Args = %q, missing %q", args, w)
				}
			}
			for _, w := range tt.wantNot {
				if slices.Contains(args, w) {
					t.Errorf("Args = %q, must not contain %q", args, w)
				}
			}
		})
	}
}

// TestArgsNeverHoldPassword writes a real password file and checks that the
// password is nowhere in x11vnc's arguments.
func TestArgsNeverHoldPassword(t *testing.T) {
	const pw = "s3cr3t-pw"
	path, err := WritePasswordFile(t.TempDir(), pw, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range Args(Options{Display: ":5", Port: 5905, PasswordFile: path}) {
		if strings.Contains(a, pw) || strings.Contains(a, pw[:MaxPasswordLen]) {
			t.Fatalf("argument %q holds the password", a)
		}
	}
}

// Vectors written by the real x11vnc 0.9.16: `x11vnc -storepasswd PW FILE`.
var storepasswdVectors = []struct{ password, hex string }{
	{"password", "dbd83cfd727a1458"},
	{"Tr0ub4dor&3", "20455e1add9035b0"},
}

func TestEncodePassword(t *testing.T) {
	for _, v := range storepasswdVectors {
		got := EncodePassword(v.password)
		if hex.EncodeToString(got[:]) != v.hex {
			t.Errorf("EncodePassword(%q) = %x, want %s", v.password, got, v.hex)
		}
	}
}

func TestWritePasswordFile(t *testing.T) {
	dir := t.TempDir()
	for _, v := range storepasswdVectors {
		path, err := WritePasswordFile(dir, v.password, os.Getuid(), os.Getgid())
		if err != nil {
			t.Fatal(err)
		}
		if path != filepath.Join(dir, PasswordFileName) {
			t.Errorf("path = %q", path)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		if hex.EncodeToString(b) != v.hex {
			t.Errorf("file for %q = %x, want %s", v.password, b, v.hex)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only the password file", len(entries))
	}
	if _, err := WritePasswordFile(dir, "", -1, -1); err == nil {
		t.Error("empty password: want an error")
	}
	if _, err := WritePasswordFile(filepath.Join(dir, "missing"), "x", -1, -1); err == nil {
		t.Error("missing dir: want an error")
	}
}

// TestWritePasswordFileMatchesX11vnc compares with the file the installed
// x11vnc writes itself.
func TestWritePasswordFileMatchesX11vnc(t *testing.T) {
	bin, err := exec.LookPath("x11vnc")
	if err != nil {
		t.Skip("x11vnc not installed (apt-get install x11vnc)")
	}
	dir := t.TempDir()
	const pw = "correct horse"
	want := filepath.Join(dir, "by-x11vnc")
	cmd := exec.Command(bin, "-storepasswd", pw, want)
	cmd.Env = []string{"HOME=" + dir}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("x11vnc -storepasswd: %v\n%s", err, out)
	}
	path, err := WritePasswordFile(dir, pw, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(want)
	b, _ := os.ReadFile(path)
	if !bytes.Equal(a, b) {
		t.Errorf("our file %x, x11vnc's %x", b, a)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		password string
		want     string // substring; "" = no warning
	}{
		{"", "set VNC_PASSWORD"},
		{"12345678", ""},
		{"short", ""},
		{"123456789-long-secret", "only the first 8"},
	}
	for _, tt := range tests {
		w := Warnings(tt.password)
		if tt.want == "" {
			if len(w) != 0 {
				t.Errorf("Warnings(%q) = %q, want none", tt.password, w)
			}
			continue
		}
		if len(w) != 1 || !strings.Contains(w[0], tt.want) {
			t.Errorf("Warnings(%q) = %q, want one containing %q", tt.password, w, tt.want)
		}
		if tt.password != "" && strings.Contains(w[0], tt.password[:6]) {
			t.Errorf("Warnings leaks the password: %q", w[0])
		}
	}
}

func TestWaitReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("RFB 003.008\n"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := WaitReady(ctx, ln.Addr().String()); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}

	// Nothing listening: WaitReady gives up when the context ends.
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := free.Addr().String()
	free.Close()
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := WaitReady(ctx, addr); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("WaitReady on a closed port = %v, want an error naming %s", err, addr)
	}

	// Something that is not VNC.
	http, _ := net.Listen("tcp", "127.0.0.1:0")
	defer http.Close()
	go func() {
		for {
			c, err := http.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := WaitReady(ctx, http.Addr().String()); err == nil || !strings.Contains(err.Error(), "unexpected banner") {
		t.Fatalf("WaitReady on HTTP = %v, want unexpected banner", err)
	}
}
