package pgcluster

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNoPostgres reports that no PostgreSQL server binaries were found, so no
// private cluster can be started. Its text tells the reader how to get one.
var ErrNoPostgres = errors.New("pgcluster: PostgreSQL server binaries (initdb, postgres) not found: install Debian's postgresql package (apt-get install postgresql) or run the database with `docker compose up -d postgres` and set LATCHKEY_DATABASE_URL")

// debianRoot is where Debian and Ubuntu install each major version's server
// binaries, one directory per version; none of them is on PATH by default.
const debianRoot = "/usr/lib/postgresql"

// FindBinDir returns the directory holding initdb and postgres: the one on
// PATH if both are there, else the newest /usr/lib/postgresql/*/bin. It
// returns ErrNoPostgres if there is neither.
func FindBinDir() (string, error) {
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	// Both must come from the same directory: initdb runs the postgres next
	// to itself, and mixing versions would fail in confusing ways.
	if err1 == nil && err2 == nil && filepath.Dir(initdb) == filepath.Dir(postgres) {
		return filepath.Abs(filepath.Dir(initdb))
	}
	if dir, ok := newestBinDir(debianRoot); ok {
		return dir, nil
	}
	return "", ErrNoPostgres
}

// newestBinDir returns root/<version>/bin for the highest version under root
// whose bin directory holds both initdb and postgres.
func newestBinDir(root string) (string, bool) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", false
	}
	best, bestVersion := "", ""
	for _, e := range entries {
		bin := filepath.Join(root, e.Name(), "bin")
		if !isExecutable(filepath.Join(bin, "initdb")) || !isExecutable(filepath.Join(bin, "postgres")) {
			continue
		}
		if best == "" || versionLess(bestVersion, e.Name()) {
			best, bestVersion = bin, e.Name()
		}
	}
	return best, best != ""
}

// versionLess reports whether version a sorts before version b, comparing
// dot-separated parts as numbers so that 9.6 < 15 < 16 (a string comparison
// would put "9.6" last). A part that is not a number sorts before any number.
func versionLess(a, b string) bool {
	ap, bp := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(ap) && i < len(bp); i++ {
		an, aerr := strconv.Atoi(ap[i])
		bn, berr := strconv.Atoi(bp[i])
		switch {
		case aerr != nil && berr != nil:
			if ap[i] != bp[i] {
				return ap[i] < bp[i]
			}
		case aerr != nil:
			return true
		case berr != nil:
			return false
		case an != bn:
			return an < bn
		}
	}
	return len(ap) < len(bp)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
