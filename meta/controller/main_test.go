package controller

import (
	"fmt"
	"os"
	"testing"

	"sluice.dev/internal/pgtest"
)

// TestMain closes the suite's PostgreSQL pool and stops the server
// pgtest started (see helpers_test.go).
func TestMain(m *testing.M) {
	code := m.Run()
	closeTestPostgres()
	if err := pgtest.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: cleanup:", err)
	}
	os.Exit(code)
}
