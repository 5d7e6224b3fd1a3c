//go:build race

package agent_test

// raceEnabled: the race detector slows copying several times over and
// adds shadow memory to the RSS, so memory tests scale down and measure
// the Go heap instead.
const raceEnabled = true
