package mail

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// SMTP delivers through a mail server, one connection per message: Latchkey
// sends a few mails a minute, not a newsletter.
type SMTP struct {
	from   string
	host   string
	client func(timeout time.Duration) (*gomail.Client, error)
}

// NewSMTP returns the transport LATCHKEY_SMTP_URL describes:
//
//	smtp://user:password@mail.example.com:587   STARTTLS, required
//	smtps://user:password@mail.example.com:465  TLS from the start
//	smtp://127.0.0.1:25/?tls=none               no TLS: a relay on this host
//
// The username and password, if any, are sent with whichever mechanism
// the server offers (PLAIN, LOGIN, SCRAM…), only over TLS unless
// tls=none. from is the From address of every message.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url's message quotes the URL, password and all.
		return nil, errors.New("mail: LATCHKEY_SMTP_URL does not parse as a URL")
	}
	opts := []gomail.Option{}
	port := 587
	switch {
	case u.Scheme == "smtps":
		port = 465
		opts = append(opts, gomail.WithSSL())
	case u.Scheme == "smtp" && u.Query().Get("tls") == "none":
		port = 25
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case u.Scheme == "smtp":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		return nil, fmt.Errorf("mail: LATCHKEY_SMTP_URL must start with smtp:// or smtps://, not %s://", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("mail: LATCHKEY_SMTP_URL has a port that is not a number")
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil {
		pass, _ := u.User.Password()
		mech := gomail.SMTPAuthAutoDiscover
		if u.Query().Get("tls") == "none" {
			// A relay on this host, reached without TLS: go-mail's PLAIN
			// refuses to send a password unencrypted unless told so.
			mech = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(mech), gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	host := u.Hostname()
	return &SMTP{from: from, host: host, client: func(timeout time.Duration) (*gomail.Client, error) {
		return gomail.NewClient(host, append(opts, gomail.WithTimeout(timeout))...)
	}}, nil
}

// Send delivers e. A refusal the server calls permanent (a 5xx reply) is
// a *PermanentError.
func (t *SMTP) Send(ctx context.Context, e Envelope) error {
	m := gomail.NewMsg()
	if err := m.From(t.from); err != nil {
		return &PermanentError{Err: fmt.Errorf("mail: From address %q: %w", t.from, err)}
	}
	if err := m.To(e.To); err != nil {
		return &PermanentError{Err: fmt.Errorf("mail: recipient: %w", err)}
	}
	m.Subject(e.Subject)
	m.SetMessageIDWithValue(e.MessageID)
	m.SetDate()
	// Automated mail: no out-of-office replies to it (RFC 3834).
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, e.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	c, err := t.client(timeoutOf(ctx))
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	err = c.DialAndSendWithContext(ctx, m)
	if err != nil && m.IsDelivered() {
		// The server took the message; only closing the connection
		// failed. Sending again would deliver it twice.
		return nil
	}
	if err != nil && m.HasSendError() && !m.SendErrorIsTemp() {
		return &PermanentError{Err: fmt.Errorf("mail: %s refused the message: %w", t.host, m.SendError())}
	}
	if err != nil {
		return fmt.Errorf("mail: %s: %w", t.host, err)
	}
	return nil
}

// timeoutOf is what is left of ctx's deadline, for the client's reads and
// writes, or DefaultTimeout.
func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Second)
	}
	return DefaultTimeout
}
