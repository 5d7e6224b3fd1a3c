package server

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"golang.org/x/sys/unix"
)

// readDirect's raw read(2) on a non-blocking socket: what has arrived,
// EAGAIN reported as "nothing more for now", and EOF once the peer has
// closed.
func TestReadDirect(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := readDirect(fds[0], buf); n != 0 || err != nil {
		t.Fatalf("empty socket: %d, %v; want 0, nil", n, err)
	}
	msg := bytes.Repeat([]byte("sluice"), 10)
	if _, err := unix.Write(fds[1], msg); err != nil {
		t.Fatal(err)
	}
	if n, err := readDirect(fds[0], buf); n != len(msg) || err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("after a write of %d bytes: %d, %v", len(msg), n, err)
	}
	if _, err := unix.Write(fds[1], msg); err != nil {
		t.Fatal(err)
	}
	if n, err := readDirect(fds[0], buf[:7]); n != 7 || err != nil || !bytes.Equal(buf[:7], msg[:7]) {
		t.Fatalf("into a short buffer: %d, %v", n, err)
	}
	unix.Close(fds[1])
	n, err := readDirect(fds[0], buf)
	if n != len(msg)-7 || !errors.Is(err, io.EOF) || !bytes.Equal(buf[:n], msg[7:]) {
		t.Fatalf("after the peer closed: %d, %v; want the %d bytes left and EOF", n, err, len(msg)-7)
	}
	if _, err := readDirect(-1, buf); !errors.Is(err, unix.EBADF) {
		t.Fatalf("a bad descriptor: %v", err)
	}
}
