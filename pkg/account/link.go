package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

// Purpose is what a link does when it is followed.
type Purpose string

// The purposes of links. Their values are those email_links stores.
const (
	// Reset sets a new password for a user who forgot theirs.
	Reset Purpose = "reset"
	// Verify proves that the user can read mail at an address: their
	// own, or one they asked to change to.
	Verify Purpose = "verify"
	// Invite sets the first password of a user an admin invited.
	Invite Purpose = "invite"
	// SignUp creates the account someone asked for on the sign-up page.
	SignUp Purpose = "signup"
)

// Lifetime is how long a link of purpose p works after it is made: long
// enough to reach the mailbox and be read, short enough that a link left
// in an old mail is no use. A reset is the shortest, since it hands over
// the account.
func (p Purpose) Lifetime() time.Duration {
	switch p {
	case Reset:
		return 30 * time.Minute
	case Invite:
		return 7 * 24 * time.Hour
	}
	return 24 * time.Hour
}

// Path is where a link of purpose p leads, relative to the issuer:
// pkg/signin serves a page there, and the mails link to it.
func (p Purpose) Path() string {
	switch p {
	case Reset:
		return "/login/reset"
	case Invite:
		return "/login/invitation"
	case SignUp:
		return "/signup/confirm"
	}
	return "/email/verify"
}

// Link is a stored link: everything but its token, of which only the
// digest is kept.
type Link struct {
	// TokenHash is the SHA-256 digest of the token.
	TokenHash []byte
	Purpose   Purpose
	// UserID is the user the link acts for; "" for a sign-up, whose user
	// does not exist until it is followed.
	UserID string
	// Email is the address the link was sent to; for Verify, the address
	// that becomes the user's when it is followed.
	Email string
	// Payload is what following the link needs besides, sealed: a
	// sign-up's name and password hash, or the mark of an address change.
	Payload   []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is when the link was followed; nil until then.
	UsedAt *time.Time
}

// Errors of a link that cannot be followed. Each gets a page of its own
// with a way forward (pkg/signin); none says more than the link's holder
// knows already.
var (
	// ErrLinkUnknown means no link has this token: mistyped, cut short,
	// tampered with, or swept long after it expired.
	ErrLinkUnknown = errors.New("account: no such link")
	// ErrLinkUsed means the link was followed already.
	ErrLinkUsed = errors.New("account: the link was used already")
	// ErrLinkExpired means the link's time ran out, or a newer link or a
	// password change replaced it.
	ErrLinkExpired = errors.New("account: the link expired or was replaced")
	// ErrLinkPurpose means the token is a link's, but for another page.
	ErrLinkPurpose = errors.New("account: the link is for another page")
	// ErrLinkForeign means the link acts for another user than the one
	// signed in on this browser.
	ErrLinkForeign = errors.New("account: the link is another user's")
	// ErrAccountUnavailable means the link's user is disabled: a link
	// does nothing for them, as a password would not.
	ErrAccountUnavailable = errors.New("account: the account is disabled")
)

// Store keeps links and counts mails. Every method joins the transaction
// ctx carries (pkg/audit's Change), so that a link is made or spent with
// the change it belongs to.
//
// InsertLink stores l, to expire lifetime from now by the database's
// clock, which SpendLink checks against, and fills in CreatedAt and
// ExpiresAt. SpendLink marks the link with the digest spent, if it has purpose, is
// unused and has not expired, in one statement, and returns it with spent
// true; otherwise it spends nothing and returns the stored link, or nil if
// there is none, with spent false. ExpireLinks ends the user's unused
// links of the purposes, and returns how many it ended. ReserveMail counts
// the mails sent under key within the last window, under a lock on key
// that every node respects until the transaction ends, and records one
// more if fewer than limit were sent.
type Store interface {
	InsertLink(ctx context.Context, l *Link, lifetime time.Duration) error
	LinkByHash(ctx context.Context, hash []byte) (*Link, error)
	SpendLink(ctx context.Context, hash []byte, purpose Purpose) (l *Link, spent bool, err error)
	ExpireLinks(ctx context.Context, userID string, purposes []Purpose) (int64, error)
	LiveLinks(ctx context.Context, userID string, purpose Purpose) ([]*Link, error)
	ReserveMail(ctx context.Context, key string, limit int, window time.Duration) (bool, error)
}

// tokenBytes is the size of a link's token: 256 bits, beyond guessing, so
// that a fast digest is as safe to store as a slow one.
const tokenBytes = 32

// newToken returns a new token and its digest.
func newToken() (token string, hash []byte) {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, digest(token)
}

// digest is the stored form of a token.
func digest(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// wellFormed reports whether token could be one newToken made; what could
// not names no link, and costs no database query.
func wellFormed(token string) bool {
	b, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil && len(b) == tokenBytes
}

// problem says why l, the stored link of a token (nil if none), cannot be
// followed as purpose at now; nil if it can.
func problem(l *Link, purpose Purpose, now time.Time) error {
	switch {
	case l == nil:
		return ErrLinkUnknown
	case l.Purpose != purpose:
		return ErrLinkPurpose
	case l.UsedAt != nil:
		return ErrLinkUsed
	case !now.Before(l.ExpiresAt):
		return ErrLinkExpired
	}
	return nil
}
