//go:build race

package spec

// raceEnabled: the race detector slows everything several times, so timing
// figures are not held to.
const raceEnabled = true
