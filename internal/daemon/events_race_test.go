//go:build race

package daemon

// evRaceEnabled builds the server under test with the race detector too.
const evRaceEnabled = true
