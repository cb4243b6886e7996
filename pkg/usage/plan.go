package usage

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey/latchkey/pkg/validation"
)

// The endpoints a plan limits, and the scope that limits all of them
// together.
const (
	EndpointToken      = "token"
	EndpointIntrospect = "introspect"
	EndpointRevoke     = "revoke"
	AllEndpoints       = "*"
)

// Endpoints are the metered endpoints, in the order reports list them.
var Endpoints = []string{EndpointToken, EndpointIntrospect, EndpointRevoke}

var (
	// ErrNotFound means no plan has the name asked for.
	ErrNotFound = errors.New("plan not found")
	// ErrExists means a plan with the name is already defined.
	ErrExists = errors.New("a plan with this name already exists")
	// ErrBadSubject means a subject is neither client:ID nor key:ID.
	ErrBadSubject = errors.New(`a subject is "client:" or "key:" followed by an ID`)
	// ErrBadRange means a usage report's from is after its to, or they are
	// more than MaxReportDays apart.
	ErrBadRange = errors.New("a usage report's from must not be after its to, nor more than 366 days before it")
)

// Plan is a named set of limits an admin assigns to clients and API keys.
type Plan struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Limits      []Limit   `json:"limits"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Limit is what a plan allows at one endpoint, or at all of them together
// ("*"). A zero field does not limit. Rates are per node and refill
// continuously; quotas hold across all nodes and reset at the start of each
// UTC day and month.
type Limit struct {
	Endpoint  string `json:"endpoint"`
	PerSecond int64  `json:"per_second,omitempty"`
	PerMinute int64  `json:"per_minute,omitempty"`
	PerDay    int64  `json:"per_day,omitempty"`
	PerMonth  int64  `json:"per_month,omitempty"`
}

// MaxLimit bounds every number in a plan: beyond it, a limit is no limit,
// and arithmetic on it stays far from overflow.
const MaxLimit = 1_000_000_000_000

// validName keeps plan names plain, since they appear in URLs, audit
// events and CLI arguments.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks a plan, reporting every problem as a *validation.Error.
func (p *Plan) Validate() error {
	e := &validation.Error{Of: "plan"}
	if !validName.MatchString(p.Name) {
		e.Add("name", "must be 1 to 64 of the characters A-Z a-z 0-9 . _ -, starting with a letter or digit")
	}
	if utf8.RuneCountInString(p.Description) > 500 || strings.ContainsFunc(p.Description, unicode.IsControl) {
		e.Add("description", "must be at most 500 characters on one line")
	}
	if len(p.Limits) == 0 {
		e.Add("limits", "must list at least one limit")
	}
	seen := map[string]bool{}
	for i, l := range p.Limits {
		field := fmt.Sprintf("limits[%d]", i)
		if l.Endpoint != AllEndpoints && !slices.Contains(Endpoints, l.Endpoint) {
			e.Add(field+".endpoint", "must be one of token, introspect, revoke or * (all of them)")
		} else if seen[l.Endpoint] {
			e.Add(field+".endpoint", "is limited twice; put all of %s's limits in one entry", l.Endpoint)
		}
		seen[l.Endpoint] = true
		for _, n := range []struct {
			name  string
			value int64
		}{{"per_second", l.PerSecond}, {"per_minute", l.PerMinute}, {"per_day", l.PerDay}, {"per_month", l.PerMonth}} {
			if n.value < 0 || n.value > MaxLimit {
				e.Add(field+"."+n.name, "must be from 1 to %d, or 0 (no limit)", int64(MaxLimit))
			}
		}
		if l.PerSecond == 0 && l.PerMinute == 0 && l.PerDay == 0 && l.PerMonth == 0 {
			e.Add(field, "limits nothing: set per_second, per_minute, per_day or per_month")
		}
	}
	return e.Err()
}

// ValidSubject reports whether s names something a plan can be assigned
// to: "client:" or "key:" and an ID of at most 128 printable characters.
func ValidSubject(s string) bool {
	kind, id, ok := strings.Cut(s, ":")
	if !ok || (kind != "client" && kind != "key") || id == "" || len(id) > 128 {
		return false
	}
	return !strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' })
}

// ClientSubject is the subject a client's calls are charged to.
func ClientSubject(clientID string) string { return "client:" + clientID }

// KeySubject is the subject an API key's introspections are charged to.
func KeySubject(keyID string) string { return "key:" + keyID }

// limitsFor returns the plan's limits that apply to a call at endpoint:
// the endpoint's own and those of all endpoints.
func (p *Plan) limitsFor(endpoint string) []scoped {
	var out []scoped
	for _, l := range p.Limits {
		if l.Endpoint == endpoint || l.Endpoint == AllEndpoints {
			out = append(out, scoped{l})
		}
	}
	return out
}

// scoped is a Limit applied to a call.
type scoped struct{ Limit }
