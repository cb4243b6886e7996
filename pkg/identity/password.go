package identity

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
)

// HashParams are the argon2id parameters new password hashes use: 64 MiB
// of memory, two passes, two lanes. That is more than three times the
// memory of OWASP's floor (19 MiB, t=2, p=1) and takes about 65 ms on a
// 2-core machine. Hashes made with other parameters still verify, and are
// replaced with one made with these at the user's next sign-in.
var HashParams = argon2id.Params{
	Memory:      64 * 1024,
	Iterations:  2,
	Parallelism: 2,
	SaltLength:  16,
	KeyLength:   32,
}

// Password policy (NIST SP 800-63B §5.1.1.2): length, not composition
// rules, and no password that attackers try first.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 128
)

// ErrWeakPassword is wrapped by every policy violation; the message says
// which rule the password broke.
var ErrWeakPassword = errors.New("password does not meet the policy")

//go:embed common_passwords.txt
var commonPasswordList string

// commonPasswords is the embedded list as a set, lower case.
var commonPasswords = func() map[string]struct{} {
	set := make(map[string]struct{}, 18000)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordList))
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			set[line] = struct{}{}
		}
	}
	return set
}()

// CheckPassword applies the password policy: 8 to 128 characters of any
// kind, not one of the commonly used passwords shipped in the binary, and
// not the user's own email.
func CheckPassword(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		return fmt.Errorf("%w: use at least %d characters", ErrWeakPassword, MinPasswordLength)
	case n > MaxPasswordLength:
		return fmt.Errorf("%w: use at most %d characters", ErrWeakPassword, MaxPasswordLength)
	}
	lower := strings.ToLower(password)
	if _, common := commonPasswords[lower]; common {
		return fmt.Errorf("%w: it is one of the most common passwords, which attackers try first", ErrWeakPassword)
	}
	if email != "" && strings.EqualFold(password, email) {
		return fmt.Errorf("%w: it must not be your email address", ErrWeakPassword)
	}
	return nil
}

// Hasher hashes and checks passwords with argon2id. It runs at most a few
// hashes at once, because each holds 64 MiB: a flood of sign-ins then
// queues rather than exhausting memory.
type Hasher struct {
	slots chan struct{}
}

// dummyHash is a hash of a password nobody has, checked when there is no
// user, so that an unknown email costs as much time as a wrong password.
// It is made on first use, once per process: most commands never need it.
var dummyHash = sync.OnceValue(func() string {
	hash, err := argon2id.CreateHash("not a password anyone has", &HashParams)
	if err != nil {
		panic("identity: argon2id: " + err.Error()) // only crypto/rand can fail here
	}
	return hash
})

// NewHasher returns a Hasher that runs as many hashes at once as there are
// CPUs.
func NewHasher() *Hasher {
	return &Hasher{slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the encoded argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	hash, err := argon2id.CreateHash(password, &HashParams)
	if err != nil {
		return "", fmt.Errorf("identity: hash password: %w", err)
	}
	return hash, nil
}

// Verify reports whether password matches hash, in constant time. An empty
// hash (a user without a password, or no user at all) is checked against a
// dummy hash, so that the answer takes as long as for a real one. stale
// reports that the hash uses other parameters than HashParams and should
// be replaced.
func (h *Hasher) Verify(ctx context.Context, password, hash string) (ok, stale bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	if hash == "" {
		_, _ = argon2id.ComparePasswordAndHash(password, dummyHash())
		return false, false, nil
	}
	ok, params, err := argon2id.CheckHash(password, hash)
	if err != nil {
		return false, false, fmt.Errorf("identity: verify password: %w", err)
	}
	return ok, ok && *params != HashParams, nil
}
