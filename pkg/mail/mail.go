package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/mail"
	"path"
	"strings"
	texttemplate "text/template"
	"time"

	"golang.org/x/text/language"
)

// Message is one mail to send, before it is rendered.
type Message struct {
	// Template names the message's templates: NAME.txt, whose "subject"
	// template is the subject line and whose body is the plain-text
	// part, and NAME.html, the HTML part.
	Template string
	// To is the recipient's address.
	To string
	// Locale is the recipient's language: a BCP 47 tag (a user's locale
	// claim) or an Accept-Language header, for someone not yet known. ""
	// or a language no template speaks is English.
	Locale string
	// Data is what the templates show, as their dot.
	Data any
}

// Rendered is a message ready to send.
type Rendered struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// Stored is a message in the outbox. Its JSON, which the admin API and
// the CLI show, never holds the message itself: it carries single-use
// links, which only the recipient may see.
type Stored struct {
	ID        int64  `json:"id"`
	Template  string `json:"template"`
	Recipient string `json:"recipient"`
	// Sealed is the Rendered message, sealed; nil once sent and erased.
	Sealed []byte `json:"-"`
	Status Status `json:"status"`
	// Attempts counts delivery attempts begun, including one in progress.
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error"`
	CreatedAt     time.Time `json:"created_at"`
	// AttemptsSince is when the current run of attempts began: CreatedAt,
	// or when an admin last retried the message after it failed. It is the
	// sender's, to know when to give up, and not shown.
	AttemptsSince time.Time  `json:"-"`
	SentAt        *time.Time `json:"sent_at"`
}

// Status is where a message is in its delivery.
type Status string

// A message is pending until it is sent, or until its attempts run out and
// it fails (an admin can retry a failed message).
const (
	Pending Status = "pending"
	Sent    Status = "sent"
	Failed  Status = "failed"
)

// Store keeps the outbox. InsertMail joins the transaction ctx carries (see
// pkg/audit's Store.InTx), so that a message is written with the change
// that causes it, or not at all.
type Store interface {
	InsertMail(ctx context.Context, m *Stored) error
}

// Sealer seals messages at rest (pkg/seal): they carry single-use links.
type Sealer interface {
	Seal(plaintext, additionalData []byte) []byte
	Open(sealed, additionalData []byte) ([]byte, error)
}

// Outbox renders messages and writes them to the outbox, from which a
// Sender delivers them.
type Outbox struct {
	store     Store
	box       Sealer
	templates *Templates
}

// NewOutbox returns an Outbox that writes to store, sealed by box.
func NewOutbox(store Store, box Sealer, templates *Templates) *Outbox {
	return &Outbox{store: store, box: box, templates: templates}
}

// Enqueue renders m and writes it to the outbox, in the transaction ctx
// carries if there is one: call it inside the transaction of the change
// that causes the mail (an audit.Log Change), so that the mail is sent if
// and only if the change commits. It does not send: a Sender does, on
// whichever node gets to it first.
func (o *Outbox) Enqueue(ctx context.Context, m Message) error {
	_, err := o.enqueue(ctx, m)
	return err
}

// enqueue is Enqueue, returning the message as stored, for the Manager to
// name it in its audit event and its answer.
func (o *Outbox) enqueue(ctx context.Context, m Message) (*Stored, error) {
	if !sendable(m.To) {
		return nil, fmt.Errorf("mail: %q is not an address to send to", m.To)
	}
	r, err := o.templates.Render(m)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	s := &Stored{Template: m.Template, Recipient: m.To, Sealed: o.box.Seal(plain, sealedFor(m.To))}
	if err := o.store.InsertMail(ctx, s); err != nil {
		return nil, fmt.Errorf("mail: enqueue %s: %w", m.Template, err)
	}
	return s, nil
}

// sendable reports whether to is a bare address (no display name, no
// angle brackets) that a message can be sent to.
func sendable(to string) bool {
	a, err := mail.ParseAddress(to)
	return err == nil && a.Address == to
}

// Open unseals a stored message.
func Open(box Sealer, s *Stored) (Rendered, error) {
	var r Rendered
	if s.Sealed == nil {
		return r, errors.New("mail: the message was erased once sent")
	}
	plain, err := box.Open(s.Sealed, sealedFor(s.Recipient))
	if err != nil {
		return r, fmt.Errorf("mail: open message %d: %w", s.ID, err)
	}
	if err := json.Unmarshal(plain, &r); err != nil {
		return r, fmt.Errorf("mail: message %d: %w", s.ID, err)
	}
	return r, nil
}

// sealedFor binds a sealed message to its recipient, so that a message
// cannot be moved to another address in the database and still open.
func sealedFor(to string) []byte { return []byte("mail to " + to) }

// DefaultLocale is the language every template exists in.
const DefaultLocale = "en"

// Templates are the mail templates: for each locale, a directory of
// NAME.txt and NAME.html files. Every message exists in DefaultLocale;
// other locales may translate some.
type Templates struct {
	// text and html hold each message's templates by locale, then name.
	// Each file is a set of its own, since every .txt defines "subject".
	text    map[string]map[string]*texttemplate.Template
	html    map[string]map[string]*htmltemplate.Template
	matcher language.Matcher
	tags    []language.Tag
}

// LoadTemplates parses the templates in fsys, one directory per locale,
// and fails at start-up on one that does not parse or lacks its other
// half. site is what mails call this provider (the issuer's host), given
// to templates as {{site}}.
func LoadTemplates(fsys fs.FS, site string) (*Templates, error) {
	t := &Templates{text: map[string]map[string]*texttemplate.Template{}, html: map[string]map[string]*htmltemplate.Template{}}
	dirs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("mail: templates: %w", err)
	}
	funcs := map[string]any{"site": func() string { return site }}
	t.tags = []language.Tag{language.MustParse(DefaultLocale)}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		loc := d.Name()
		tag, err := language.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("mail: templates: directory %s is not a language tag", loc)
		}
		t.text[loc], t.html[loc] = map[string]*texttemplate.Template{}, map[string]*htmltemplate.Template{}
		files, err := fs.Glob(fsys, path.Join(loc, "*.txt"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			name := strings.TrimSuffix(path.Base(f), ".txt")
			txt, err := texttemplate.New(path.Base(f)).Funcs(funcs).ParseFS(fsys, f)
			if err != nil {
				return nil, fmt.Errorf("mail: templates: %w", err)
			}
			if txt.Lookup("subject") == nil {
				return nil, fmt.Errorf("mail: templates: %s defines no subject", f)
			}
			html, err := htmltemplate.New(name+".html").Funcs(funcs).ParseFS(fsys, path.Join(loc, name+".html"))
			if err != nil {
				return nil, fmt.Errorf("mail: templates: %s has no HTML part: %w", f, err)
			}
			t.text[loc][name], t.html[loc][name] = txt, html
		}
		if loc != DefaultLocale {
			t.tags = append(t.tags, tag)
		}
	}
	if t.text[DefaultLocale] == nil {
		return nil, fmt.Errorf("mail: templates: no %s directory", DefaultLocale)
	}
	for loc, names := range t.text {
		for name := range names {
			if t.text[DefaultLocale][name] == nil {
				return nil, fmt.Errorf("mail: templates: %s/%s has no %s original", loc, name, DefaultLocale)
			}
		}
	}
	t.matcher = language.NewMatcher(t.tags)
	return t, nil
}

// Render renders m in the best locale that has its template.
func (t *Templates) Render(m Message) (Rendered, error) {
	var r Rendered
	loc := t.locale(m.Locale)
	if t.text[loc][m.Template] == nil {
		loc = DefaultLocale
	}
	txt, html := t.text[loc][m.Template], t.html[loc][m.Template]
	if txt == nil {
		return r, fmt.Errorf("mail: no template %s", m.Template)
	}
	var subject, text, body bytes.Buffer
	if err := txt.ExecuteTemplate(&subject, "subject", m.Data); err != nil {
		return r, fmt.Errorf("mail: render %s subject: %w", m.Template, err)
	}
	if err := txt.Execute(&text, m.Data); err != nil {
		return r, fmt.Errorf("mail: render %s: %w", m.Template, err)
	}
	if err := html.Execute(&body, m.Data); err != nil {
		return r, fmt.Errorf("mail: render %s: %w", m.Template, err)
	}
	// A subject is one header line, whatever the data held.
	r.Subject = strings.Join(strings.Fields(subject.String()), " ")
	r.Text, r.HTML = strings.TrimSpace(text.String())+"\n", body.String()
	return r, nil
}

// locale picks the template directory for a BCP 47 tag or an
// Accept-Language list.
func (t *Templates) locale(want string) string {
	if want == "" {
		return DefaultLocale
	}
	_, i, conf := t.matcher.Match(parseLocales(want)...)
	if conf == language.No {
		return DefaultLocale
	}
	base, _ := t.tags[i].Base()
	for _, loc := range []string{t.tags[i].String(), base.String()} {
		if _, ok := t.text[loc]; ok {
			return loc
		}
	}
	return DefaultLocale
}

// parseLocales reads a tag or an Accept-Language list; what does not
// parse is no preference.
func parseLocales(s string) []language.Tag {
	tags, _, err := language.ParseAcceptLanguage(s)
	if err != nil || len(s) > 200 {
		return nil
	}
	return tags
}

// ErrNotFound means no message has the ID asked for (in the state asked
// for).
var ErrNotFound = errors.New("mail: no such message")

// Query selects messages in the outbox, newest first. Zero fields do not
// filter.
type Query struct {
	Status Status
	// BeforeID continues a listing after the message with this ID.
	BeforeID int64
	// Limit caps the messages returned; 0 returns all.
	Limit int
}
