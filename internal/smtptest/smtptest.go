// Package smtptest runs a real SMTP server in the test's process, for
// tests of the mail Latchkey sends: the product delivers to it over TCP
// exactly as it would to a mail provider, and the test reads what arrived.
// The server can be stopped and restarted on the same address (a mail
// provider's outage), can require a password, and can hold a message
// in the middle of its mail transaction (a node killed mid-send).
//
//	srv := smtptest.Start(t)
//	env["LATCHKEY_SMTP_URL"] = srv.URL()
//	...
//	m := srv.Await(t, "ada@example.com")
//	link := m.Link(t, "/reset")
package smtptest

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Server is an SMTP server that keeps every message it accepts.
type Server struct {
	addr string
	auth *url.Userinfo

	mu       sync.Mutex
	srv      *smtp.Server
	messages []Message
	// hold, while not nil, makes each DATA wait until it is closed.
	hold chan struct{}
	// holding counts mail transactions waiting on hold.
	holding int
	// refused are recipients the server refuses for good (550).
	refused map[string]bool
	changed *sync.Cond
}

// Option changes how a Server is started.
type Option func(*Server)

// WithPassword makes the server require AUTH PLAIN as user with password.
func WithPassword(user, password string) Option {
	return func(s *Server) { s.auth = url.UserPassword(user, password) }
}

// Refuse makes the server refuse mail to the address to for good, as a
// server does a mailbox that does not exist (550).
func (s *Server) Refuse(to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil {
		s.refused = map[string]bool{}
	}
	s.refused[strings.ToLower(to)] = true
}

// Accept makes the server take mail to the address to again after Refuse,
// as once a mailbox is set up.
func (s *Server) Accept(to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refused, strings.ToLower(to))
}

// Start starts a server on a free loopback port; it stops when the test
// ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{}
	s.changed = sync.NewCond(&s.mu)
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(func() {
		s.Release()
		s.Stop()
	})
	return s
}

// URL is the LATCHKEY_SMTP_URL that reaches the server: plain SMTP on
// loopback (tls=none), with the password if it requires one.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr, User: s.auth, Path: "/", RawQuery: "tls=none"}
	return u.String()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(backend{s})
	srv.Domain = "smtptest.localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Stop closes the server and every connection to it, as a mail provider
// that goes down would; messages accepted so far are kept.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart listens again on the same address after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; give the kernel a moment to free it.
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("smtptest: listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

// Hold makes every message from now on wait in the middle of its mail
// transaction (before its recipient is accepted, so before any of it is
// sent), until Release.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release lets held messages, and those that follow, through.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// AwaitHeld waits until a message is held, that is until a sender is in
// the middle of sending it.
func (s *Server) AwaitHeld(t testing.TB, timeout time.Duration) {
	t.Helper()
	s.await(t, timeout, "a message to be held", func() bool { return s.holding > 0 })
}

// Messages returns every message accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// To returns the messages accepted so far for the address to.
func (s *Server) To(to string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, r := range m.To {
			if strings.EqualFold(r, to) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Await waits up to 30 seconds for a message to the address to and
// returns the first one; it fails the test if none comes.
func (s *Server) Await(t testing.TB, to string) Message {
	t.Helper()
	return s.AwaitN(t, to, 1)[0]
}

// AwaitN waits up to 30 seconds until n messages to the address to have
// arrived and returns them all.
func (s *Server) AwaitN(t testing.TB, to string, n int) []Message {
	t.Helper()
	var got []Message
	s.await(t, 30*time.Second, "mail to "+to, func() bool {
		s.mu.Unlock()
		got = s.To(to)
		s.mu.Lock()
		return len(got) >= n
	})
	return got
}

// await waits until ok, called with s.mu held, is true.
func (s *Server) await(t testing.TB, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	// The condition is also polled, since ok may depend on the clock.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				s.changed.Broadcast()
			}
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("smtptest: waited %s for %s; %d messages arrived", timeout, what, len(s.messages))
		}
		s.changed.Wait()
	}
}

// Message is a message the server accepted.
type Message struct {
	From      string
	To        []string
	Header    mail.Header
	Subject   string
	MessageID string
	// Text and HTML are the decoded plain-text and HTML parts.
	Text, HTML string
	// Raw is the message as received.
	Raw []byte
}

var linkPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// Links returns the http and https URLs in the plain-text part, in order.
func (m Message) Links() []string { return linkPattern.FindAllString(m.Text, -1) }

// Link returns the one link whose path contains path, failing the test if
// there is not exactly one.
func (m Message) Link(t testing.TB, path string) string {
	t.Helper()
	var found []string
	for _, l := range m.Links() {
		if u, err := url.Parse(l); err == nil && strings.Contains(u.Path, path) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("smtptest: mail %q has %d links to %s, want 1:\n%s", m.Subject, len(found), path, m.Text)
	}
	return found[0]
}

// parse decodes a received message.
func parse(from string, to []string, raw []byte) (Message, error) {
	m := Message{From: from, To: to, Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return m, err
	}
	m.Header = msg.Header
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return m, err
	}
	m.MessageID = msg.Header.Get("Message-Id")
	return m, m.readPart(textproto(msg.Header), msg.Body)
}

type header interface{ Get(string) string }

func textproto(h mail.Header) header { return h }

// readPart stores the text and HTML found in one MIME part, descending
// into multiparts.
func (m *Message) readPart(h header, body io.Reader) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	media, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return err
	}
	if strings.HasPrefix(media, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.readPart(p.Header, p); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64Reader(body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch media {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	}
	return nil
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.auth == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		want, _ := ss.s.auth.Password()
		if user != ss.s.auth.Username() || pass != want {
			return errors.New("smtptest: wrong username or password")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.auth != nil && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	// A held message waits here, in the middle of its mail transaction:
	// a sender that dies now has not sent it, and its connection's end
	// ends the transaction without a message.
	s := ss.s
	s.mu.Lock()
	if hold := s.hold; hold != nil {
		s.holding++
		s.changed.Broadcast()
		s.mu.Unlock()
		<-hold
		s.mu.Lock()
		s.holding--
	}
	refused := s.refused[strings.ToLower(to)]
	s.mu.Unlock()
	if refused {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := parse(ss.from, ss.to, raw)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	s.changed.Broadcast()
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }
