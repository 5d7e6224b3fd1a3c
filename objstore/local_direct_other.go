//go:build !linux

package objstore

import "os"

// localDirect: direct writes are Linux only (local_direct_linux.go).
type localDirect struct{}

// writeObject writes data at the start of the empty file f.
func (l *Local) writeObject(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}

// disableDirect: nothing to turn off.
func (l *Local) disableDirect() {}
