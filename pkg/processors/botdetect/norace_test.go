//go:build !race

package botdetect

const raceEnabled = false
