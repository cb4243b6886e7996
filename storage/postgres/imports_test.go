package postgres_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// importPath is this package's, as other files import it.
const importPath = "github.com/latchkey/latchkey/storage/postgres"

// mayImport are the folders whose files may import this package: the one
// wiring function, the storage packages themselves, and the test helpers
// that hand tests a real store.
var mayImport = []string{"cmd/latchkey", "storage", "internal"}

// Only cmd/latchkey knows the store: each domain package declares the
// small interfaces it uses and storage/postgres implements them, so that
// the domain does not depend on its storage. Test files count too: a
// domain package's tests get their store from internal/pgtest, typed by
// the package's own interfaces.
func TestOnlyTheWiringImportsTheStore(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		if d.IsDir() {
			// The go command ignores these too.
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || under(rel, mayImport) {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range f.Imports {
			if p, _ := strconv.Unquote(spec.Path.Value); p != importPath {
				continue
			}
			t.Errorf("%s imports storage/postgres: declare the interface the package uses, and let cmd/latchkey pass the store (tests: internal/pgtest)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// under reports whether the slash-separated path rel lies in one of dirs.
func under(rel string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(dir string) bool { return strings.HasPrefix(rel, dir+"/") })
}
