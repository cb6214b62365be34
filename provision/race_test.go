//go:build race

package provision_test

// raceEnabled: the race detector slows the kill test's child processes
// down, so it samples every 4th step unless ACCO_KILLTEST_STRIDE says.
const raceEnabled = true
