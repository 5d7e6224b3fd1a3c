//go:build race

package main

// raceEnabled: under -race the brokers are built with -race too, as
// e2e's TestMain builds sluice, so that the build cache serves both.
const raceEnabled = true
