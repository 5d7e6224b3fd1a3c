//go:build !linux

package hugepage

// Advise does nothing: transparent huge pages are a Linux feature.
func Advise(b []byte) bool { return false }
