package main

import (
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// pages are the app's HTML pages, parsed once at start-up: a broken
// template stops the app before it serves anyone.
type pages struct {
	t *template.Template
}

const layout = `{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Notes</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{text-align:left;padding:.2rem .8rem .2rem 0;vertical-align:top}
code{word-break:break-all}header{display:flex;gap:1rem;align-items:center;justify-content:space-between}</style>
</head><body><header><strong><a href="/">Notes</a></strong>
{{if .Name}}<form method="post" action="/logout"><span id="who">{{.Name}}</span> <button id="sign-out">Sign out</button></form>{{end}}
</header><main><h1>{{.Title}}</h1>{{end}}
{{define "bottom"}}</main></body></html>{{end}}

{{define "home"}}{{template "top" .}}
{{if .Claims}}<p>You are signed in. <a id="vault" href="/vault">Open the vault</a>, which needs a second factor.</p>
<h2>Your ID token's claims</h2>
<table id="claims">{{range .Claims}}<tr><th>{{.Name}}</th><td><code id="claim-{{.Name}}">{{.Value}}</code></td></tr>{{end}}</table>
{{else}}<p id="signed-out">You are not signed in.</p><p><a id="sign-in" href="/login">Sign in with Latchkey</a></p>{{end}}
{{template "bottom" .}}{{end}}

{{define "vault"}}{{template "top" .}}
<p>The Notes API opened the vault for a sign-in of class <code id="acr">{{.ACR}}</code> at {{.AuthTime}}.</p>
<ul id="secrets">{{range .Secrets}}<li><strong>{{.Title}}</strong>: {{.Body}}</li>{{end}}</ul>
{{template "bottom" .}}{{end}}

{{define "message"}}{{template "top" .}}<p id="message">{{.Message}}</p><p><a href="/">Back to Notes</a></p>{{template "bottom" .}}{{end}}
`

func newPages() *pages {
	return &pages{t: template.Must(template.New("pages").Parse(layout))}
}

// frame is what every page shows: its title, and who is signed in.
type frame struct {
	Title string
	Name  string
}

// claim is one row of the claims table.
type claim struct{ Name, Value string }

// homePage is the start page: the user's claims, or a way to sign in.
type homePage struct {
	frame
	Claims []claim
}

// vaultPage shows what the API's step-up route answered.
type vaultPage struct {
	frame
	ACR      string
	AuthTime string
	Secrets  []Note
}

// messagePage says what went wrong, in words for the user.
type messagePage struct {
	frame
	Message string
}

func (p *pages) home(w http.ResponseWriter, d homePage) { p.render(w, http.StatusOK, "home", d) }
func (p *pages) vault(w http.ResponseWriter, d vaultPage) {
	p.render(w, http.StatusOK, "vault", d)
}
func (p *pages) message(w http.ResponseWriter, status int, d messagePage) {
	p.render(w, status, "message", d)
}

func (p *pages) render(w http.ResponseWriter, status int, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Every page is about one user: keep it out of shared caches.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := p.t.ExecuteTemplate(w, name, data); err != nil {
		slog.Error("rendering a page", "page", name, "err", err)
	}
}

// claimRows lists claims by name, each value as JSON; times also in words.
func claimRows(claims map[string]any) []claim {
	rows := make([]claim, 0, len(claims))
	for name, v := range claims {
		b, _ := json.Marshal(v)
		value := string(b)
		if n, ok := v.(float64); ok && (name == "auth_time" || name == "iat" || name == "exp") {
			value += " (" + time.Unix(int64(n), 0).UTC().Format(time.RFC3339) + ")"
		}
		rows = append(rows, claim{Name: name, Value: value})
	}
	slices.SortFunc(rows, func(a, b claim) int { return strings.Compare(a.Name, b.Name) })
	return rows
}
