//go:build race

package jobs

// raceEnabled: under -race, sync.Pool drops items at random, so every lz4
// frame a client wrote with 4 MiB blocks makes its reader allocate (and the
// race detector clear) a fresh 4 MiB buffer; the randomized key-compaction
// tests then run 2000x slower. They run fewer seeds there and all of them
// in `make test-short`.
const raceEnabled = true
