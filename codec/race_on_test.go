//go:build race

package codec

// raceEnabled: sync.Pool drops items at random under -race, so pooled
// allocation counts are not asserted there.
const raceEnabled = true
