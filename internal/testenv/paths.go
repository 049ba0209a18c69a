package testenv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the directory holding the repository's go.mod, found by
// walking up from the working directory (go test runs in the package dir).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// SharedDataDir returns ../shared/data relative to the repository root, or
// skips the test when it does not exist: the real traffic samples live next to
// the repository in CI, not in a user's clone.
func SharedDataDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(RepoRoot(t)), "shared", "data")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Skipf("shared test data not found at %s (it sits next to the repository as ../shared/data; CI provides it)", dir)
	}
	return dir
}

// SharedData returns the path of rel under ../shared/data. It skips the test
// when the data directory is absent and fails it when the directory is there
// but rel is not (a typo or a renamed sample must not pass silently).
func SharedData(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(SharedDataDir(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("testenv: shared data %s does not exist", p)
		}
		t.Fatalf("testenv: shared data: %v", err)
	}
	return p
}
