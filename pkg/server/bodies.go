package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// FormBodyLimit caps a request body on the public listener. Every public
// endpoint takes a form, and the largest a client has reason to send (a
// token request with a private_key_jwt assertion, or an authorization
// request by POST with an id_token_hint and a claims parameter, each of
// which pkg/oauth caps) is a few kilobytes.
const FormBodyLimit = 64 << 10

// formMediaType is the one media type the public listener's bodies may
// have: RFC 6749 §3.2 and §4.1.3, RFC 7009 §2.1, RFC 7662 §2.1, and HTML
// forms without a file input all send it.
const formMediaType = "application/x-www-form-urlencoded"

// BodyPolicy says which request bodies a listener takes. NewRouter
// enforces it on every route, before any handler or other middleware has
// read a byte of the body, so that no handler has to:
//
//   - A multipart upload is never parsed, so nothing is ever spooled to a
//     temporary file. net/http deletes those files only for the request it
//     handed the router, not for the copies middleware makes (scs's
//     LoadAndSave, r.WithContext), and fosite parses multipart bodies even
//     on GET: an anonymous upload would otherwise stay on disk for good.
//   - No handler reads more than MaxBytes.
//
// The zero BodyPolicy takes every body.
type BodyPolicy struct {
	// MaxBytes caps every request body; 0 is no cap. A request that
	// declares a longer Content-Length is refused with 413 before its body
	// is read; one that does not declare its length (chunked) is read up
	// to the cap before the handler runs, and refused with 413 if longer.
	MaxBytes int64
	// FormsOnly takes only bodies that are application/x-www-form-urlencoded
	// (parameters such as charset allowed), by any method. A request with
	// a body of any other media type, multipart/form-data included, or
	// without a Content-Type, is refused with 415. A request without a body
	// is not judged by its Content-Type: there is nothing to read.
	FormsOnly bool
	// JSONPaths are paths whose bodies are application/json (parameters
	// allowed) instead of forms, with FormsOnly: the endpoint of RFC 7591
	// client registration, whose requests are JSON documents, and the
	// paths under each (RFC 7592's client configuration endpoints). Every
	// other rule holds for them as for the rest.
	JSONPaths []string
	// Refuse answers a refused request in the shape the listener's callers
	// read (ProtocolRefusal, or the admin API's problem details). It must
	// not read the body. Nil answers as ProtocolRefusal(nil) does.
	Refuse func(w http.ResponseWriter, r *http.Request, why Refusal)
}

// Refusal is why a BodyPolicy turned a request away.
type Refusal struct {
	// Status is 413 (too large), 415 (not a media type the listener
	// takes), or 400 (a body that broke off while it was read).
	Status int
	// Detail says what was wrong, and what to send instead, to the
	// developer of the client.
	Detail string
}

// PageFunc renders a page for a person: a title and a message that says
// what to do next. cmd/latchkey makes one from pkg/ui's pages, which this
// package does not know.
type PageFunc func(w http.ResponseWriter, r *http.Request, status int, title, message string)

// ProtocolRefusal answers a refused request as the OAuth endpoints answer
// errors, with an RFC 6749 §5.2 invalid_request in JSON; a browser (a
// request whose Accept names text/html) gets a page from page instead,
// which says what to do, since a person reads it. With a nil page every
// request gets the JSON.
func ProtocolRefusal(page PageFunc) func(http.ResponseWriter, *http.Request, Refusal) {
	return func(w http.ResponseWriter, r *http.Request, why Refusal) {
		if page != nil && wantsHTML(r) {
			title, message := "Cannot read this form", "Your browser sent a form in a way Latchkey does not accept. Go back, reload the page and try again."
			if why.Status == http.StatusRequestEntityTooLarge {
				title, message = "Too much to send", "The form you sent is larger than Latchkey accepts. Go back, shorten what you typed and try again."
			}
			page(w, r, why.Status, title, message)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		WriteJSON(w, why.Status, struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}{"invalid_request", why.Detail})
	}
}

// wantsHTML reports whether r comes from a browser: one that asks for
// text/html.
func wantsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}

// limitBodies enforces p (see BodyPolicy).
func limitBodies(p BodyPolicy) func(http.Handler) http.Handler {
	refuse := p.Refuse
	if refuse == nil {
		refuse = ProtocolRefusal(nil)
	}
	tooLarge := Refusal{http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than %d bytes.", p.MaxBytes)}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// ContentLength is 0 only for a request known to have no body;
			// -1 (chunked, or unknown) may have one.
			if p.FormsOnly && r.ContentLength != 0 {
				if p.takesJSON(r.URL.Path) {
					if !isMediaType(r.Header.Get("Content-Type"), jsonMediaType) {
						refuse(w, r, Refusal{http.StatusUnsupportedMediaType,
							"The request body must be " + jsonMediaType + "."})
						return
					}
				} else if !isForm(r.Header.Get("Content-Type")) {
					refuse(w, r, Refusal{http.StatusUnsupportedMediaType,
						"The request body must be " + formMediaType + "; other media types, multipart/form-data included, are not accepted."})
					return
				}
			}
			if p.MaxBytes > 0 && r.ContentLength != 0 {
				if r.ContentLength > p.MaxBytes {
					refuse(w, r, tooLarge)
					return
				}
				if r.ContentLength < 0 {
					// Read now, so that an overlong body is answered with
					// 413 here rather than as whatever a handler makes of a
					// failed read. It is no more than a handler would read.
					body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.MaxBytes))
					var over *http.MaxBytesError
					switch {
					case errors.As(err, &over):
						refuse(w, r, tooLarge)
						return
					case err != nil:
						refuse(w, r, Refusal{http.StatusBadRequest, "The request body could not be read."})
						return
					}
					r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
				}
				r.Body = http.MaxBytesReader(w, r.Body, p.MaxBytes)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// jsonMediaType is what the JSONPaths' bodies must be.
const jsonMediaType = "application/json"

// takesJSON reports whether path is one of p.JSONPaths or under one.
func (p BodyPolicy) takesJSON(path string) bool {
	for _, j := range p.JSONPaths {
		if path == j || strings.HasPrefix(path, j+"/") {
			return true
		}
	}
	return false
}

// isForm reports whether contentType names formMediaType, with any
// parameters.
func isForm(contentType string) bool {
	return isMediaType(contentType, formMediaType)
}

// isMediaType reports whether contentType names want, with any
// parameters.
func isMediaType(contentType, want string) bool {
	if contentType == want {
		return true // as nearly every client sends it; parsing allocates
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == want
}
