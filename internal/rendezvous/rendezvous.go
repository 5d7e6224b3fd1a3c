// Package rendezvous holds the score both of Sluice's rendezvous
// (highest random weight) choices use: partition leaders among agents
// (server/agents.go) and block owners among a zone's agents
// (cache/zone.go). Whoever scores highest for a key wins; adding an agent
// moves to it only the keys it now wins, about 1/n of them.
package rendezvous

// Score mixes a key's hash with a candidate's hash into a well-spread
// score: the SplitMix64 finalizer over their xor, so that every input bit
// flips about half the output bits.
func Score(keyHash, candidateHash uint64) uint64 {
	x := keyHash ^ candidateHash
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
