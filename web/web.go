// Package web holds the templates and static files of Latchkey's pages,
// embedded so that the binary serves its own UI with no external assets.
package web

import (
	"embed"
	"io/fs"
)

// Templates holds one html/template file per page plus layout.html, which
// every page renders inside.
//
//go:embed templates/*.html
var Templates embed.FS

// Static holds the files served under /static/.
//
//go:embed static
var Static embed.FS

// Mail holds the mail templates, one directory per locale (pkg/mail).
//
//go:embed templates/mail
var mailFS embed.FS

// Mail returns the mail templates with their locale directories at its
// root.
func Mail() fs.FS {
	sub, err := fs.Sub(mailFS, "templates/mail")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}
