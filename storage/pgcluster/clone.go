package pgcluster

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Clone copies the stopped cluster in src/data to dst/data, keeping every
// file's mode and owner, so that Start on dst finds a cluster to reuse.
// Copying a fresh cluster takes a fraction of initdb's time, which is what
// tests that start many clusters want. dst must not hold a cluster yet. The
// copy is not synced to disk.
func Clone(src, dst string) error {
	from := filepath.Join(src, "data")
	to := filepath.Join(dst, "data")
	// A running server's files change under the copy and make a broken
	// cluster; postmaster.pid exists exactly while one runs.
	if _, err := os.Stat(filepath.Join(from, "postmaster.pid")); err == nil {
		return fmt.Errorf("pgcluster: clone: the cluster in %s is running", src)
	}
	if _, err := os.Stat(filepath.Join(from, "PG_VERSION")); err != nil {
		return fmt.Errorf("pgcluster: clone: no cluster in %s: %w", src, err)
	}
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("pgcluster: clone: %s already exists", to)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("pgcluster: clone: %w", err)
	}
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		return copyEntry(path, filepath.Join(to, rel), d)
	})
	if err != nil {
		return fmt.Errorf("pgcluster: clone: %w", err)
	}
	return nil
}

// copyEntry copies one file, directory or symlink, then gives the copy the
// original's mode (Postgres insists on 0700 or 0750 for the data directory)
// and, when we may, its owner.
func copyEntry(src, dst string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	switch {
	case d.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
	case d.Type()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		return chownLike(dst, info)
	case d.Type().IsRegular():
		if err := copyFile(src, dst); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: unexpected file type %v", src, d.Type())
	}
	if err := os.Chmod(dst, info.Mode().Perm()); err != nil {
		return err
	}
	return chownLike(dst, info)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src) // #nosec G304 -- copying the template cluster's files within directories we created
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- copying the template cluster's files within directories we created
	if err != nil {
		return err
	}
	// io.Copy between files uses copy_file_range on Linux: no user-space
	// buffer, and a reflink on file systems that offer one.
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// chownLike gives path the owner of info's file. Only root may give files
// away; anyone else made files that are already theirs.
func chownLike(path string, info fs.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}
