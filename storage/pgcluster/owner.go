package pgcluster

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// account is the user the server's files belong to and its processes run as.
type account struct {
	uid, gid int
	// cred is the credential to switch to, or nil to run as ourselves.
	cred *syscall.Credential
}

// serverAccount returns the current user, or the postgres system user when we
// are root: Postgres refuses to run as root, so root hands the cluster over.
func serverAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return account{}, fmt.Errorf("pgcluster: running as root, which Postgres refuses, and there is no postgres user to run it as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("pgcluster: postgres user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("pgcluster: postgres user: gid %q: %w", u.Gid, err)
	}
	// No supplementary groups: the server needs none of root's, and
	// reachableBy checks access with the primary group alone to match.
	return account{uid: int(uid), gid: int(gid), cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}, nil
}

// own gives path to the server's user; a no-op when we are that user.
func (a account) own(path string) error {
	if a.cred == nil {
		return nil
	}
	if err := os.Lchown(path, a.uid, a.gid); err != nil {
		return fmt.Errorf("pgcluster: hand %s to the postgres user: %w", path, err)
	}
	return nil
}

// checkAncestors makes sure the server's user can reach dir: every directory
// above it must grant that user search (x) permission. Without this check the
// server would fail later with a bare "permission denied" in its log; the
// usual cause is a directory under /root, which is private to root.
func (a account) checkAncestors(dir string) error {
	if a.cred == nil {
		return nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	for p := filepath.Dir(real); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		if !a.canSearch(fi) {
			return fmt.Errorf("pgcluster: %s is not readable by the postgres user (it lacks search permission, o+x), so the server cannot reach %s; choose a directory under /tmp or /srv", p, dir)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// canSearch applies the Unix permission rules: the owner bits if the user owns
// the directory, else the group bits if it is in the group, else the others.
func (a account) canSearch(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == a.uid:
		return perm&0o100 != 0
	case int(st.Gid) == a.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
