package mail_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/web"
)

// greetings has a message in English and German, and one only in English.
var greetings = fstest.MapFS{
	"en/hello.txt":  {Data: []byte(`{{define "subject"}}Hello {{.}}{{end}}Hello, {{.}}, from {{site}}.`)},
	"en/hello.html": {Data: []byte(`<p>Hello, {{.}}, from {{site}}.</p>`)},
	"en/bye.txt":    {Data: []byte(`{{define "subject"}}Bye{{end}}Bye.`)},
	"en/bye.html":   {Data: []byte(`<p>Bye.</p>`)},
	"de/hello.txt":  {Data: []byte(`{{define "subject"}}Hallo {{.}}{{end}}Hallo, {{.}}, von {{site}}.`)},
	"de/hello.html": {Data: []byte(`<p>Hallo, {{.}}, von {{site}}.</p>`)},
}

func TestAMessageIsRenderedInTheRecipientsLanguageWhereItHasOne(t *testing.T) {
	tpl, err := mail.LoadTemplates(greetings, "id.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ template, locale, subject string }{
		{"hello", "", "Hello Ada"},
		{"hello", "de", "Hallo Ada"},
		{"hello", "de-AT", "Hallo Ada"},
		{"hello", "fr-CH, de;q=0.8, en;q=0.5", "Hallo Ada"},
		{"hello", "fr", "Hello Ada"},
		{"hello", "not a language !!", "Hello Ada"},
		{"bye", "de", "Bye"}, // no German yet: English
	} {
		r, err := tpl.Render(mail.Message{Template: c.template, Locale: c.locale, Data: "Ada"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Subject != c.subject {
			t.Errorf("%s in %q: subject %q, want %q", c.template, c.locale, r.Subject, c.subject)
		}
	}
}

func TestTheHTMLPartEscapesWhatTheDataHoldsAndTheSubjectStaysOneLine(t *testing.T) {
	tpl, err := mail.LoadTemplates(greetings, "id.example.com")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tpl.Render(mail.Message{Template: "hello", Data: "<b>Mallory</b>\r\nBcc: victim@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<b>") {
		t.Errorf("HTML part carries markup from the data: %s", r.HTML)
	}
	if strings.ContainsAny(r.Subject, "\r\n") {
		t.Errorf("subject %q spans lines", r.Subject)
	}
}

func TestTemplatesThatCannotBeSentFailAtStartUp(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no subject":         {"en/a.txt": {Data: []byte(`Hi`)}, "en/a.html": {Data: []byte(`<p>Hi</p>`)}},
		"no HTML part":       {"en/a.txt": {Data: []byte(`{{define "subject"}}A{{end}}Hi`)}},
		"no English":         {"de/a.txt": {Data: []byte(`{{define "subject"}}A{{end}}Hi`)}, "de/a.html": {Data: []byte(`<p>Hi</p>`)}},
		"a translation only": {"en/a.txt": {Data: []byte(`{{define "subject"}}A{{end}}Hi`)}, "en/a.html": {Data: []byte(`<p>Hi</p>`)}, "de/b.txt": {Data: []byte(`{{define "subject"}}B{{end}}Hi`)}, "de/b.html": {Data: []byte(`<p>Hi</p>`)}},
		"broken syntax":      {"en/a.txt": {Data: []byte(`{{define "subject"}}A{{end}}{{.Nope`)}, "en/a.html": {Data: []byte(`<p>Hi</p>`)}},
	} {
		if _, err := mail.LoadTemplates(fsys, "id.example.com"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestEveryShippedTemplateRenders(t *testing.T) {
	if _, err := mail.LoadTemplates(web.Mail(), "id.example.com"); err != nil {
		t.Fatal(err)
	}
}
