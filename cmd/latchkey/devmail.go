package main

import (
	"html/template"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/storage/postgres"
)

// devMailPath is where latchkey dev shows the mail it would have sent.
const devMailPath = "/dev/mail"

// devMailShown is how many of the newest messages the list shows.
const devMailShown = 50

// devMail shows latchkey dev's outbox, so that a developer can follow the
// links in its mail without a mail server. Its sender prints the links
// too, and keeps what it sent, which serve never does.
type devMail struct {
	store *postgres.Store
	box   *seal.Box
}

// Register adds the mail viewer's pages to r.
func (d *devMail) Register(r chi.Router) {
	r.Get(devMailPath, d.list)
	r.Get(devMailPath+"/{id}", d.show)
}

// devMailView is one message as the viewer shows it.
type devMailView struct {
	ID        int64
	To        string
	Status    mail.Status
	When      string
	LastError string
	mail.Rendered
	// Frame is the HTML part, for the iframe's srcdoc: a page of its own,
	// sandboxed, with no script.
	Frame string
}

func (d *devMail) list(w http.ResponseWriter, r *http.Request) {
	ms, err := d.store.Mail(r.Context(), mail.Query{Limit: devMailShown})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var views []devMailView
	for _, m := range ms {
		v := devMailView{ID: m.ID, To: m.Recipient, Status: m.Status, When: m.CreatedAt.Format("15:04:05"), LastError: m.LastError}
		if rendered, err := mail.Open(d.box, m); err == nil {
			v.Rendered = rendered
		} else {
			v.Subject = "(" + err.Error() + ")"
		}
		views = append(views, v)
	}
	render(w, devMailListPage, views)
}

func (d *devMail) show(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ms, err := d.store.Mail(r.Context(), mail.Query{BeforeID: id + 1, Limit: 1})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if len(ms) == 0 || ms[0].ID != id {
		http.NotFound(w, r)
		return
	}
	m := ms[0]
	rendered, err := mail.Open(d.box, m)
	if err != nil {
		http.Error(w, err.Error(), http.StatusGone)
		return
	}
	render(w, devMailPage, devMailView{ID: m.ID, To: m.Recipient, Status: m.Status, When: m.CreatedAt.Format("15:04:05"),
		LastError: m.LastError, Rendered: rendered, Frame: rendered.HTML})
}

// render writes a dev page. Its templates are fixed: an error is a bug.
func render(w http.ResponseWriter, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := t.Execute(w, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

const devMailStyle = `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #ddd}
pre{white-space:pre-wrap;background:#f5f5f5;padding:1rem}iframe{width:100%;height:28rem;border:1px solid #ccc}
.failed{color:#a00}</style>`

var devMailListPage = template.Must(template.New("list").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Mail – latchkey dev</title>` + devMailStyle + `</head><body>
<h1>Mail</h1>
<p>The mail this development server sent, newest first. Without <code>LATCHKEY_SMTP_URL</code> it goes nowhere else: it stays here, and its links are printed on the console.</p>
{{if .}}<table><thead><tr><th>Time</th><th>To</th><th>Subject</th><th>Status</th></tr></thead><tbody>
{{range .}}<tr><td>{{.When}}</td><td>{{.To}}</td><td><a href="/dev/mail/{{.ID}}">{{.Subject}}</a></td><td class="{{.Status}}">{{.Status}}</td></tr>
{{end}}</tbody></table>{{else}}<p id="empty">No mail yet. Ask for a password reset on the sign-in page, and it appears here.</p>{{end}}
</body></html>`))

var devMailPage = template.Must(template.New("show").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{{.Subject}} – latchkey dev</title>` + devMailStyle + `</head><body>
<p><a href="/dev/mail">All mail</a></p>
<h1 id="subject">{{.Subject}}</h1>
<p>To {{.To}} at {{.When}}, {{.Status}}{{if .LastError}} ({{.LastError}}){{end}}.</p>
<h2>Plain text</h2>
<pre id="text">{{.Text}}</pre>
<h2>HTML</h2>
<iframe title="The HTML part" sandbox srcdoc="{{.Frame}}"></iframe>
</body></html>`))
