// Package layers holds the test that keeps sluice's imports flowing one way:
// the layering the README's "Layout" states, checked against what every
// package really imports.
package layers
