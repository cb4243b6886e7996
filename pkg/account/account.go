package account

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/mail"
)

// MailsPerHour is the most mails anyone can have sent to one account or
// address in an hour by asking for them (a reset, a sign-up, an address
// change): enough for a lost mail and a retry, too few to flood a mailbox.
const MailsPerHour = 3

// Users is the user directory as account lifecycle uses it
// (identity.Manager). Every change joins the transaction ctx carries.
type Users interface {
	Get(ctx context.Context, id string) (*identity.User, error)
	GetByEmail(ctx context.Context, email string) (*identity.User, error)
	Create(ctx context.Context, u identity.User, password string) (*identity.User, error)
	CreateWithHash(ctx context.Context, u identity.User, hash string) (*identity.User, error)
	Update(ctx context.Context, id string, edit func(*identity.User) error) (*identity.User, error)
	HashPassword(ctx context.Context, password, email string) (string, error)
	SetPasswordHash(ctx context.Context, id, hash string) error
}

// Factors are users' second factors (identity.MFA): a reset must pass the
// user's as a sign-in would.
type Factors interface {
	Enabled(ctx context.Context, userID string) (bool, error)
	Verify(ctx context.Context, userID, code string) error
}

// Auditor runs a change in a transaction with its audit event (pkg/audit).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Mailer writes mail to the outbox in the transaction ctx carries
// (mail.Outbox).
type Mailer interface {
	Enqueue(ctx context.Context, m mail.Message) error
}

// Sealer seals what a link carries (pkg/seal).
type Sealer interface {
	Seal(plaintext, additionalData []byte) []byte
	Open(sealed, additionalData []byte) ([]byte, error)
}

// Service makes links, mails them, and does what following them does.
// The CLI, the admin API and the sign-in pages all go through it. MFA,
// SignIn and Forgot are needed only by the sign-in pages' methods.
type Service struct {
	Store Store
	Users Users
	MFA   Factors
	Audit Auditor
	Mail  Mailer
	Box   Sealer
	// Issuer is the URL links are built on (LATCHKEY_ISSUER).
	Issuer string
	// SignIn and Forgot are the sign-in page and the forgot-password
	// page, which a mail about a taken address offers.
	SignIn, Forgot string
	// SignUpDomains, if not empty, are the only email domains SignUp
	// accepts (LATCHKEY_SIGNUP_DOMAINS).
	SignUpDomains []string
}

// Errors of the requests themselves, which the pages and the admin API
// turn into a message.
var (
	// ErrCodeRequired means a reset for a user with a second factor came
	// without a code from it.
	ErrCodeRequired = errors.New("account: a code from the second factor is required")
	// ErrAddressTaken means another account has had the address since
	// the link was sent.
	ErrAddressTaken = errors.New("account: another account has this address")
	// ErrSameAddress means an address change to the address the user has.
	ErrSameAddress = errors.New("account: the address is the user's already")
	// ErrTooManyMails means the user asked for more mails this hour than
	// MailsPerHour.
	ErrTooManyMails = errors.New("account: too many mails asked for this hour")
	// ErrHasPassword means an invitation for a user who set a password.
	ErrHasPassword = errors.New("account: the user has a password already")
	// ErrAlreadyVerified means a verification asked for an address that
	// is verified already.
	ErrAlreadyVerified = errors.New("account: the address is verified already")
	// ErrNoInvitation means there is no unused invitation to revoke.
	ErrNoInvitation = errors.New("account: the user has no invitation outstanding")
)

// DomainError refuses a sign-up from an address outside
// LATCHKEY_SIGNUP_DOMAINS; its message names the domains, which are the
// operator's published policy.
type DomainError struct{ Domains []string }

func (e *DomainError) Error() string {
	return "Sign-up is open only to addresses at " + strings.Join(e.Domains, ", ") + "."
}

// Opened is a link that can be followed, as the page a GET shows sees it.
type Opened struct {
	Purpose Purpose
	// Email is the address the link went to.
	Email string
	// User is who the link acts for; nil for a sign-up.
	User *identity.User
	// NeedsCode says a reset must come with a code from the user's second
	// factor.
	NeedsCode bool
}

// mailData is what the mail templates show.
type mailData struct {
	// Link is the link to follow, when the mail has one.
	Link string
	// Email is the address the mail goes to; Name the person's name, if
	// known.
	Email, Name string
	// Minutes, Hours and Days are how long the link works, in the one
	// unit its purpose's template names.
	Minutes, Hours, Days int
	// Change says a verification is for an address the user changes to.
	Change bool
	// SignIn and Forgot are the sign-in and forgot-password pages.
	SignIn, Forgot string
}

// Names of the mail templates (web/templates/mail/LOCALE/NAME.txt).
const (
	mailReset        = "password-reset"
	mailInvitation   = "invitation"
	mailVerify       = "verify-email"
	mailSignUp       = "signup"
	mailSignUpExists = "signup-exists"
	mailEmailTaken   = "email-taken"
)

// issue makes a link for l, carrying payload sealed if it is not nil,
// and mails it with template, in the transaction ctx carries.
func (s *Service) issue(ctx context.Context, l Link, payload []byte, template, locale string, data mailData) error {
	token, hash := newToken()
	l.TokenHash = hash
	if payload != nil {
		l.Payload = s.Box.Seal(payload, sealedFor(hash))
	}
	if err := s.Store.InsertLink(ctx, &l, l.Purpose.Lifetime()); err != nil {
		return err
	}
	data.Link = s.Issuer + l.Purpose.Path() + "?" + url.Values{"token": {token}}.Encode()
	data.Email = l.Email
	switch d := l.Purpose.Lifetime(); {
	case d < time.Hour:
		data.Minutes = int(d / time.Minute)
	case d <= 24*time.Hour:
		data.Hours = int(d / time.Hour)
	default:
		data.Days = int(d / (24 * time.Hour))
	}
	return s.Mail.Enqueue(ctx, mail.Message{Template: template, To: l.Email, Locale: locale, Data: data})
}

// localeOf is the language to write to u in: their locale claim, else the
// browser's (an Accept-Language header), which may be "".
func localeOf(u *identity.User, browser string) string {
	if l, ok := u.Claims["locale"].(string); ok && l != "" {
		return l
	}
	return browser
}

// RequestReset mails a password-reset link to the account with email,
// unless there is none, it is disabled, or MailsPerHour were mailed to it
// in the last hour: then it does nothing, and says so to nobody. locale is
// the browser's, for an account without a locale of its own.
func (s *Service) RequestReset(ctx context.Context, email, locale string) error {
	u, err := s.Users.GetByEmail(ctx, strings.TrimSpace(email))
	if errors.Is(err, identity.ErrNotFound) {
		return nil
	}
	if err != nil || u.Disabled {
		return err
	}
	return s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		if ok, err := s.Store.ReserveMail(ctx, "reset:"+u.ID, MailsPerHour, time.Hour); err != nil || !ok {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.UserPasswordResetRequested, Target: audit.User(u.ID)},
			s.issue(ctx, Link{Purpose: Reset, UserID: u.ID, Email: u.Email}, nil, mailReset, localeOf(u, locale), mailData{Name: u.Name})
	})
}

// Inspect returns the link token leads to, if it can be followed as
// purpose on a browser where viewer is signed in ("" for nobody), without
// spending it: for the page a GET shows, whose form then spends it.
func (s *Service) Inspect(ctx context.Context, purpose Purpose, token, viewer string) (*Opened, error) {
	if !wellFormed(token) {
		return nil, ErrLinkUnknown
	}
	l, err := s.Store.LinkByHash(ctx, digest(token))
	if err != nil && !errors.Is(err, ErrLinkUnknown) {
		return nil, err
	}
	if err := problem(l, purpose, time.Now()); err != nil {
		return nil, err
	}
	u, err := s.usable(ctx, l, viewer)
	if err != nil {
		return nil, err
	}
	o := &Opened{Purpose: purpose, Email: l.Email, User: u}
	if purpose == Reset && s.MFA != nil {
		if o.NeedsCode, err = s.MFA.Enabled(ctx, u.ID); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// spend spends the link token leads to as purpose, in the transaction ctx
// carries, and returns it with its user (nil for a sign-up).
func (s *Service) spend(ctx context.Context, purpose Purpose, token, viewer string) (*Link, *identity.User, error) {
	if !wellFormed(token) {
		return nil, nil, ErrLinkUnknown
	}
	l, spent, err := s.Store.SpendLink(ctx, digest(token), purpose)
	if err != nil {
		return nil, nil, err
	}
	if !spent {
		if err := problem(l, purpose, time.Now()); err != nil {
			return nil, nil, err
		}
		// Unspent yet fine by this clock: expired by the database's.
		return nil, nil, ErrLinkExpired
	}
	u, err := s.usable(ctx, l, viewer)
	return l, u, err
}

// usable checks that l's user, if it has one, may follow it on a browser
// where viewer is signed in, and returns the user.
func (s *Service) usable(ctx context.Context, l *Link, viewer string) (*identity.User, error) {
	if l.UserID == "" {
		return nil, nil
	}
	// A verification acts on the account it was made for: opened in a
	// browser signed in to another, it would confuse whose address
	// changed, so that user must sign out first. The other links hand
	// their holder a password, whoever is signed in.
	if l.Purpose == Verify && viewer != "" && viewer != l.UserID {
		return nil, ErrLinkForeign
	}
	u, err := s.Users.Get(ctx, l.UserID)
	if errors.Is(err, identity.ErrNotFound) {
		return nil, ErrLinkUnknown
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, ErrAccountUnavailable
	}
	if l.Purpose == Verify && !s.isChange(l) && !strings.EqualFold(l.Email, u.Email) {
		// A check of the address the user had then, which they no longer
		// have.
		return nil, ErrLinkExpired
	}
	return u, nil
}

// ResetPassword follows a reset link: it checks password against the
// policy and, for a user with a second factor, code (a TOTP or recovery
// code, throttled like a sign-in's), then, in one transaction, spends the
// link, sets the password, signs the user out everywhere and voids their
// other links. Nothing changes if any of it fails.
func (s *Service) ResetPassword(ctx context.Context, token, password, code string) (*identity.User, error) {
	o, err := s.Inspect(ctx, Reset, token, "")
	if err != nil {
		return nil, err
	}
	u := o.User
	hash, err := s.Users.HashPassword(ctx, password, u.Email)
	if err != nil {
		return nil, err
	}
	if o.NeedsCode {
		if strings.TrimSpace(code) == "" {
			return nil, ErrCodeRequired
		}
		// Checked before the transaction: a wrong code must stay counted
		// against the account whatever becomes of the reset.
		if err := s.MFA.Verify(ctx, u.ID, code); err != nil {
			return nil, err
		}
	}
	ctx = audit.WithActor(ctx, audit.User(u.ID))
	err = s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		_, u, err := s.spend(ctx, Reset, token, "")
		if err != nil {
			return audit.Event{}, err
		}
		// SetPasswordHash records user.password_set, which the security
		// notification watches for.
		return audit.Event{}, s.Users.SetPasswordHash(ctx, u.ID, hash)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// Create adds a user as an admin does, with password if not empty. An
// address not marked verified gets a verification link, in the same
// transaction: email_verified becomes true only when the link is
// followed, or an admin says so.
func (s *Service) Create(ctx context.Context, u identity.User, password string) (*identity.User, error) {
	var created *identity.User
	err := s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		if created, err = s.Users.Create(ctx, u, password); err != nil || created.EmailVerified {
			return audit.Event{}, err
		}
		return s.verification(ctx, created, created.Email, false, "")
	})
	return created, err
}

// Update changes a user as an admin does (identity.Manager.Update). A new
// address the edit does not mark verified takes effect at once, admins
// being trusted, and gets a verification link in the same transaction.
func (s *Service) Update(ctx context.Context, id string, edit func(*identity.User) error) (*identity.User, error) {
	var updated *identity.User
	err := s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		before, err := s.Users.Get(ctx, id)
		if err != nil {
			return audit.Event{}, err
		}
		if updated, err = s.Users.Update(ctx, id, edit); err != nil {
			return audit.Event{}, err
		}
		if updated.EmailVerified || updated.Email == before.Email {
			return audit.Event{}, nil
		}
		return s.verification(ctx, updated, updated.Email, false, "")
	})
	return updated, err
}

// verification mails u a verification link for email, replacing any
// earlier one: of the address u has (change false), or of one u asked to
// change to.
func (s *Service) verification(ctx context.Context, u *identity.User, email string, change bool, locale string) (audit.Event, error) {
	if _, err := s.Store.ExpireLinks(ctx, u.ID, []Purpose{Verify}); err != nil {
		return audit.Event{}, err
	}
	var payload []byte
	if change {
		payload = []byte(changeMark)
	}
	err := s.issue(ctx, Link{Purpose: Verify, UserID: u.ID, Email: email}, payload, mailVerify, localeOf(u, locale),
		mailData{Name: u.Name, Change: change})
	if err != nil {
		return audit.Event{}, err
	}
	return audit.Event{Action: audit.UserVerificationSent, Target: audit.User(u.ID),
		Details: map[string]any{"email": email, "change": change}}, nil
}

// changeMark is the sealed payload of a verification that changes the
// user's address: without it, a verification checks the address the user
// has.
const changeMark = "change"

// sealedFor binds a link's sealed payload to the link, so that it opens
// for no other.
func sealedFor(hash []byte) []byte { return append([]byte("email link "), hash...) }

// isChange reports whether l is a verification that changes the user's
// address.
func (s *Service) isChange(l *Link) bool {
	if len(l.Payload) == 0 || s.Box == nil {
		return false
	}
	plain, err := s.Box.Open(l.Payload, sealedFor(l.TokenHash))
	return err == nil && string(plain) == changeMark
}

// RequestEmailChange mails a link to newEmail that, followed, makes it
// userID's address, verified; until then nothing changes. The caller has
// made sure the user proved who they are. If another account has
// newEmail, that address gets a notice instead, and the answer is the
// same, so that the form tells nobody which addresses have accounts.
// locale is the browser's.
func (s *Service) RequestEmailChange(ctx context.Context, userID, newEmail, locale string) error {
	u, err := s.Users.Get(ctx, userID)
	if err != nil {
		return err
	}
	newEmail = strings.TrimSpace(newEmail)
	check := *u
	check.Email = newEmail
	if err := check.Validate(); err != nil {
		return err
	}
	if strings.EqualFold(newEmail, u.Email) {
		return ErrSameAddress
	}
	ctx = audit.WithActor(ctx, audit.User(u.ID))
	return s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		if ok, err := s.Store.ReserveMail(ctx, "verify:"+u.ID, MailsPerHour, time.Hour); err != nil || !ok {
			if err == nil {
				err = ErrTooManyMails
			}
			return audit.Event{}, err
		}
		owner, err := s.Users.GetByEmail(ctx, newEmail)
		switch {
		case err == nil:
			return audit.Event{Action: audit.UserVerificationSent, Target: audit.User(u.ID),
					Details: map[string]any{"email": newEmail, "change": true, "taken": true}},
				s.Mail.Enqueue(ctx, mail.Message{Template: mailEmailTaken, To: newEmail, Locale: localeOf(owner, locale),
					Data: mailData{Email: newEmail, SignIn: s.SignIn, Forgot: s.Forgot}})
		case !errors.Is(err, identity.ErrNotFound):
			return audit.Event{}, err
		}
		return s.verification(ctx, u, newEmail, true, locale)
	})
}

// ResendVerification mails the user a new link that verifies the address
// they have, replacing any earlier verification link, for a user who lost
// or never got the first: at most MailsPerHour an hour, like a change of
// address. ErrAlreadyVerified if there is nothing to verify.
func (s *Service) ResendVerification(ctx context.Context, userID, locale string) error {
	u, err := s.Users.Get(ctx, userID)
	if err != nil {
		return err
	}
	if u.EmailVerified {
		return ErrAlreadyVerified
	}
	ctx = audit.WithActor(ctx, audit.User(u.ID))
	return s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		if ok, err := s.Store.ReserveMail(ctx, "verify:"+u.ID, MailsPerHour, time.Hour); err != nil || !ok {
			if err == nil {
				err = ErrTooManyMails
			}
			return audit.Event{}, err
		}
		return s.verification(ctx, u, u.Email, false, locale)
	})
}

// PendingEmail returns the address the user asked to change to and has
// not confirmed from its link yet, or "" if none is pending.
func (s *Service) PendingEmail(ctx context.Context, userID string) (string, error) {
	ls, err := s.Store.LiveLinks(ctx, userID, Verify)
	if err != nil {
		return "", err
	}
	for _, l := range ls {
		if s.isChange(l) {
			return l.Email, nil
		}
	}
	return "", nil
}

// Verify follows a verification link on a browser where viewer is signed
// in ("" for nobody): the address it went to becomes, or stays, the
// user's, now verified (user.email_verified). A changed address is also
// recorded as user.email_changed by identity.Manager.Update, from which
// the old one is told; the user's unused reset links, which went to the
// old address, are voided.
func (s *Service) Verify(ctx context.Context, token, viewer string) (*identity.User, error) {
	if _, err := s.Inspect(ctx, Verify, token, viewer); err != nil {
		return nil, err
	}
	var updated *identity.User
	err := s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		l, u, err := s.spend(ctx, Verify, token, viewer)
		if err != nil {
			return audit.Event{}, err
		}
		old := u.Email
		updated, err = s.Users.Update(audit.WithActor(ctx, audit.User(u.ID)), u.ID, func(u *identity.User) error {
			u.Email, u.EmailVerified = l.Email, true
			return nil
		})
		if errors.Is(err, identity.ErrEmailTaken) {
			return audit.Event{}, ErrAddressTaken
		}
		if err != nil {
			return audit.Event{}, err
		}
		// A changed address is recorded as user.email_changed by the
		// update itself; this records that the link verified it.
		e := audit.Event{Action: audit.UserEmailVerified, Actor: audit.User(u.ID), Target: audit.User(u.ID),
			Details: map[string]any{"email": updated.Email, "changed": old != updated.Email}}
		if old == updated.Email {
			return e, nil
		}
		_, err = s.Store.ExpireLinks(ctx, u.ID, []Purpose{Reset})
		return e, err
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// Invite adds u without a password and mails them a link to set one,
// in one transaction. locale is used if u has no locale claim.
func (s *Service) Invite(ctx context.Context, u identity.User, locale string) (*identity.User, error) {
	var created *identity.User
	err := s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		if created, err = s.Users.CreateWithHash(ctx, u, ""); err != nil {
			return audit.Event{}, err
		}
		return s.invite(ctx, created, false, locale)
	})
	return created, err
}

// ResendInvitation mails user id a new invitation link and voids the
// earlier ones. A user who set a password has nothing to be invited to
// (ErrHasPassword).
func (s *Service) ResendInvitation(ctx context.Context, id, locale string) (*identity.User, error) {
	var u *identity.User
	err := s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		if u, err = s.Users.Get(ctx, id); err != nil {
			return audit.Event{}, err
		}
		if u.PasswordHash != "" {
			return audit.Event{}, ErrHasPassword
		}
		if _, err := s.Store.ExpireLinks(ctx, u.ID, []Purpose{Invite}); err != nil {
			return audit.Event{}, err
		}
		return s.invite(ctx, u, true, locale)
	})
	return u, err
}

func (s *Service) invite(ctx context.Context, u *identity.User, resent bool, locale string) (audit.Event, error) {
	err := s.issue(ctx, Link{Purpose: Invite, UserID: u.ID, Email: u.Email}, nil, mailInvitation, localeOf(u, locale), mailData{Name: u.Name})
	return audit.Event{Action: audit.UserInvited, Target: audit.User(u.ID),
		Details: map[string]any{"email": u.Email, "resent": resent}}, err
}

// RevokeInvitation voids user id's unused invitation links; the user
// stays, without a password, until deleted or invited again.
func (s *Service) RevokeInvitation(ctx context.Context, id string) error {
	if !identity.IsSub(id) {
		return identity.ErrNotFound
	}
	return s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		u, err := s.Users.Get(ctx, id)
		if err != nil {
			return audit.Event{}, err
		}
		n, err := s.Store.ExpireLinks(ctx, u.ID, []Purpose{Invite})
		if err == nil && n == 0 {
			err = ErrNoInvitation
		}
		return audit.Event{Action: audit.UserInvitationRevoked, Target: audit.User(u.ID)}, err
	})
}

// AcceptInvitation follows an invitation link: it checks password against
// the policy, then in one transaction spends the link, sets the password
// and marks the address verified, which the link proved.
func (s *Service) AcceptInvitation(ctx context.Context, token, password string) (*identity.User, error) {
	o, err := s.Inspect(ctx, Invite, token, "")
	if err != nil {
		return nil, err
	}
	hash, err := s.Users.HashPassword(ctx, password, o.User.Email)
	if err != nil {
		return nil, err
	}
	var updated *identity.User
	ctx = audit.WithActor(ctx, audit.User(o.User.ID))
	err = s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		_, u, err := s.spend(ctx, Invite, token, "")
		if err != nil {
			return audit.Event{}, err
		}
		if err := s.Users.SetPasswordHash(ctx, u.ID, hash); err != nil {
			return audit.Event{}, err
		}
		updated, err = s.Users.Update(ctx, u.ID, func(u *identity.User) error {
			u.EmailVerified = true
			return nil
		})
		return audit.Event{}, err
	})
	return updated, err
}

// signUp is what a sign-up link carries, sealed, until it is followed.
type signUp struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

// SignUp asks for an account for email: if no account has the address, it
// mails a link that creates the account when followed, holding the name
// and the password's hash sealed in the link; nothing else is stored, and
// no user exists until then. If an account has it, the address gets a
// notice instead. Either way the answer is the same, and the password is
// hashed, so that neither the answer nor its time tells which it was.
// Errors are only for what the form got wrong: an address outside
// SignUpDomains (*DomainError), an invalid address or name
// (*validation.Error), a password the policy refuses.
func (s *Service) SignUp(ctx context.Context, email, name, password, locale string) error {
	u := identity.User{Email: strings.TrimSpace(email), Name: strings.TrimSpace(name)}
	if err := u.Validate(); err != nil {
		return err
	}
	if len(s.SignUpDomains) > 0 {
		_, domain, _ := strings.Cut(u.Email, "@")
		if !slices.ContainsFunc(s.SignUpDomains, func(d string) bool { return strings.EqualFold(d, domain) }) {
			return &DomainError{Domains: s.SignUpDomains}
		}
	}
	hash, err := s.Users.HashPassword(ctx, password, u.Email)
	if err != nil {
		return err
	}
	owner, err := s.Users.GetByEmail(ctx, u.Email)
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return err
	}
	return s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		key := sha256.Sum256([]byte(strings.ToLower(u.Email)))
		if ok, err := s.Store.ReserveMail(ctx, "signup:"+hex.EncodeToString(key[:]), MailsPerHour, time.Hour); err != nil || !ok {
			return audit.Event{}, err
		}
		if owner != nil {
			return audit.Event{}, s.Mail.Enqueue(ctx, mail.Message{Template: mailSignUpExists, To: owner.Email,
				Locale: localeOf(owner, locale), Data: mailData{Email: owner.Email, SignIn: s.SignIn, Forgot: s.Forgot}})
		}
		payload, err := json.Marshal(signUp{Name: u.Name, Hash: hash})
		if err != nil {
			return audit.Event{}, fmt.Errorf("account: %w", err)
		}
		return audit.Event{}, s.issue(ctx, Link{Purpose: SignUp, Email: u.Email}, payload, mailSignUp, locale, mailData{Name: u.Name})
	})
}

// CompleteSignUp follows a sign-up link: in one transaction it spends the
// link and creates the account it asked for, with its address verified,
// recorded as user.signed_up. If an account took the address since, it
// is ErrAddressTaken, and nothing changes.
func (s *Service) CompleteSignUp(ctx context.Context, token string) (*identity.User, error) {
	if _, err := s.Inspect(ctx, SignUp, token, ""); err != nil {
		return nil, err
	}
	var created *identity.User
	err := s.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		l, _, err := s.spend(ctx, SignUp, token, "")
		if err != nil {
			return audit.Event{}, err
		}
		plain, err := s.Box.Open(l.Payload, sealedFor(l.TokenHash))
		if err != nil {
			return audit.Event{}, fmt.Errorf("account: open sign-up: %w", err)
		}
		var p signUp
		if err := json.Unmarshal(plain, &p); err != nil {
			return audit.Event{}, fmt.Errorf("account: sign-up: %w", err)
		}
		created, err = s.Users.CreateWithHash(ctx, identity.User{Email: l.Email, EmailVerified: true, Name: p.Name}, p.Hash)
		if errors.Is(err, identity.ErrEmailTaken) {
			return audit.Event{}, ErrAddressTaken
		}
		if err != nil {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.UserSignedUp, Actor: audit.User(created.ID), Target: audit.User(created.ID),
			Details: map[string]any{"email": created.Email}}, nil
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}
