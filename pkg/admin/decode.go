package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// MaxBody bounds a request body on the admin listener, which cmd/latchkey
// enforces there (server.BodyPolicy) for every route: the largest admin
// document, a client with an inline key set, is a few kilobytes.
const MaxBody = 1 << 20

// readJSON reads a JSON request body into v, strictly (decodeStrict).
func readJSON(r *http.Request, v any, what string, fixed map[string]string) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeStrict(body, v, what, fixed)
}

// readPatch reads a JSON merge patch (RFC 7396), refusing fixed fields at
// once; the result of applying it is checked like a full document.
func readPatch(r *http.Request, what string, fixed map[string]string) ([]byte, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if err := decodeStrict(body, &map[string]any{}, what, fixed); err != nil {
		return nil, err
	}
	return body, nil
}

// readBody reads a JSON request body, which the listener's body policy has
// bounded to MaxBody.
// PATCH bodies are JSON merge patches and may say so with
// application/merge-patch+json.
func readBody(r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !(r.Method == http.MethodPatch && mt == "application/merge-patch+json")) {
		return nil, &problemError{status: http.StatusUnsupportedMediaType, typ: typeMediaType,
			detail: "Send the body as JSON, with Content-Type: application/json."}
	}
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &problemError{status: http.StatusRequestEntityTooLarge, typ: typeTooLarge,
			detail: fmt.Sprintf("The body is larger than %d bytes.", MaxBody)}
	case err != nil:
		return nil, badRequest("The body could not be read.")
	}
	return body, nil
}

// decodeStrict decodes one JSON object into v, refusing fields v does not
// have, so that a misspelt field is an error rather than silently ignored.
// what names the document in messages ("a client"). fixed maps fields the
// caller may see but not set here to what to say about them.
func decodeStrict(body []byte, v any, what string, fixed map[string]string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return badRequest("The body is not a JSON object%s.", syntaxHint(err))
	}
	for _, f := range slices.Sorted(maps.Keys(fixed)) {
		if _, ok := fields[f]; ok {
			return badField(f, "%s", fixed[f])
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return badField(name, "is not a field of %s", what)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		return badField(field, "must be %s, not %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	default:
		// A field's own decoder said what is wrong (a lifespan, say).
		return badRequest("The body does not decode: %v.", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// jsonKind names a Go kind as the JSON type that decodes into it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a number"
}

func syntaxHint(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf(" (syntax error at byte %d)", syn.Offset)
	}
	return ""
}

// patchSets reports whether a merge patch names field, to set or remove it.
func patchSets(patch []byte, field string) bool {
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(patch, &fields)
	_, ok := fields[field]
	return ok
}

// mergePatch applies an RFC 7396 merge patch to the JSON of the current
// resource and returns the result, for the caller to decode as strictly as
// a full document.
func mergePatch(current any, patch []byte) ([]byte, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(patch, &probe); err != nil || probe == nil {
		return nil, badRequest("The body is not a JSON merge patch (an object)%s.", syntaxHint(err))
	}
	doc, err := json.Marshal(current)
	if err != nil {
		return nil, err
	}
	merged, err := jsonpatch.MergePatch(doc, patch)
	if err != nil {
		return nil, badRequest("The merge patch does not apply: %v.", err)
	}
	return merged, nil
}
