// Package web holds the templates and static files of Latchkey's pages,
// embedded so that the binary serves its own UI with no external assets.
package web

import "embed"

// Templates holds one html/template file per page plus layout.html, which
// every page renders inside.
//
//go:embed templates/*.html
var Templates embed.FS

// Static holds the files served under /static/.
//
//go:embed static
var Static embed.FS
