package main

import "testing"

// A watch runs until interrupted: with a default deadline, `sluice watch`
// ended after 10 s without a word and the changes after it went unprinted.
func TestWatchHasNoDefaultDeadline(t *testing.T) {
	if d := watchCmd().Flags().Lookup("timeout").DefValue; d != "0s" {
		t.Fatalf("sluice watch --timeout defaults to %s: a watch must run until interrupted", d)
	}
	if d := getCmd().Flags().Lookup("timeout").DefValue; d != "10s" {
		t.Fatalf("sluice get --timeout defaults to %s, want 10s", d)
	}
}
