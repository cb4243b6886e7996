package main

import (
	"strconv"
	"strings"
)

// stepUp is what an RFC 9470 insufficient_user_authentication challenge
// asks of the next sign-in.
type stepUp struct {
	// acrValues lists the acceptable sign-ins, strongest first.
	acrValues []string
	// maxAge is the longest ago the user may have signed in, in seconds;
	// -1 when the challenge sets no limit.
	maxAge int
}

// stepUpFrom reads a step-up request from the parameters of a Bearer
// challenge. ok is false unless the error is
// insufficient_user_authentication.
func stepUpFrom(params map[string]string) (s stepUp, ok bool) {
	if params["error"] != "insufficient_user_authentication" {
		return stepUp{}, false
	}
	s = stepUp{acrValues: strings.Fields(params["acr_values"]), maxAge: -1}
	if n, err := strconv.Atoi(params["max_age"]); err == nil && n >= 0 {
		s.maxAge = n
	}
	return s, true
}

// bearerParams returns the parameters of the Bearer challenge in a
// WWW-Authenticate header (RFC 9110 §11.6.1), with names in lower case, or
// nil if there is none. Values may be tokens or quoted strings: RFC 9470's
// examples quote max_age, other servers do not.
func bearerParams(header string) map[string]string {
	var params map[string]string
	inBearer := false
	s := header
	for {
		s = strings.TrimLeft(s, " \t,")
		name, rest := token(s)
		if name == "" {
			return params
		}
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, "=") {
			// A name alone starts a challenge: this is its scheme.
			inBearer = strings.EqualFold(name, "Bearer")
			if inBearer && params == nil {
				params = map[string]string{}
			}
			s = rest
			continue
		}
		value, rest, ok := paramValue(strings.TrimLeft(rest[1:], " \t"))
		if !ok {
			return params
		}
		if inBearer {
			params[strings.ToLower(name)] = value
		}
		s = rest
	}
}

// token splits a leading RFC 9110 token off s.
func token(s string) (tok, rest string) {
	i := 0
	for i < len(s) && isTChar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func isTChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// paramValue splits a leading token or quoted string off s, unquoting it.
func paramValue(s string) (value, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		v, rest := token(s)
		return v, rest, v != ""
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false // no closing quote
}
