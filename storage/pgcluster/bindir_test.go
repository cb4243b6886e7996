package pgcluster

import (
	"os"
	"path/filepath"
	"testing"
)

func TestVersionLessComparesNumerically(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"9", "15", true},
		{"15", "9", false},
		{"9.6", "15", true},
		{"15", "16", true},
		{"16", "15", false},
		{"15", "15", false},
		{"10", "9.6", false},
		{"9.5", "9.6", true},
		{"9", "9.6", true},
		{"devel", "15", true},
		{"15", "devel", false},
	}
	for _, tt := range tests {
		if got := versionLess(tt.a, tt.b); got != tt.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNewestBinDirPicksHighestCompleteVersion(t *testing.T) {
	root := t.TempDir()
	install := func(version string, binaries ...string) {
		bin := filepath.Join(root, version, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range binaries {
			if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	install("9.6", "initdb", "postgres")
	install("15", "initdb", "postgres")
	install("16", "initdb", "postgres")
	install("17", "initdb") // a client-only install: no server binary
	install("lost+found")

	got, ok := newestBinDir(root)
	if want := filepath.Join(root, "16", "bin"); !ok || got != want {
		t.Errorf("newestBinDir = %q, %v; want %q", got, ok, want)
	}
}

func TestNewestBinDirReportsNoInstall(t *testing.T) {
	if got, ok := newestBinDir(filepath.Join(t.TempDir(), "missing")); ok {
		t.Errorf("newestBinDir = %q, want none", got)
	}
}
