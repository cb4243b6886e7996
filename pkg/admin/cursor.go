package admin

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Page sizes of lists.
const (
	defaultLimit = 50
	maxLimit     = 200
)

// cursorAAD binds sealed cursors to their use: a sealed value made for
// anything else does not open as a cursor.
var cursorAAD = []byte("latchkey admin cursor v1")

// cursor is where a list continues, sealed (encrypted and authenticated)
// before it reaches the caller: it is opaque, and any change to it is
// detected, so a tampered cursor is refused rather than trusted. It is
// bound to its list and filters, so it cannot be replayed against others.
type cursor struct {
	List   string `json:"l"`
	Filter string `json:"f"`
	After  string `json:"a"`
}

// Sealer seals and opens cursors (pkg/seal.Box).
type Sealer interface {
	Seal(plaintext, additionalData []byte) []byte
	Open(sealed, additionalData []byte) ([]byte, error)
}

// listQuery is a parsed list request: its filters, where it continues, and
// how many items to return.
type listQuery struct {
	filters url.Values
	after   string
	limit   int
	list    string
}

// parseList reads the query of a list request: limit, cursor and the
// filters the list offers. Any other parameter is refused, so that a
// misspelt filter does not silently list everything.
func (a *API) parseList(r *http.Request, list string, filters ...string) (listQuery, error) {
	q := r.URL.Query()
	lq := listQuery{filters: url.Values{}, limit: defaultLimit, list: list}
	for name, vs := range q {
		switch {
		case name == "limit":
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 1 || n > maxLimit {
				return lq, badField("limit", "must be a whole number from 1 to %d", maxLimit)
			}
			lq.limit = n
		case name == "cursor":
		case slices.Contains(filters, name):
			lq.filters.Set(name, vs[0])
		default:
			offered := append([]string{"limit", "cursor"}, filters...)
			return lq, badField(name, "is not a query parameter of this list (it takes %s)", strings.Join(offered, ", "))
		}
	}
	if raw := q.Get("cursor"); raw != "" {
		sealed, err := base64.RawURLEncoding.DecodeString(raw)
		var c cursor
		if err == nil {
			var plain []byte
			if plain, err = a.Cursors.Open(sealed, cursorAAD); err == nil {
				err = json.Unmarshal(plain, &c)
			}
		}
		if err != nil || c.List != list || c.Filter != lq.filters.Encode() {
			return lq, badField("cursor", "is not a cursor of this list with these filters; start again without it")
		}
		lq.after = c.After
	}
	return lq, nil
}

// page is one page of a list. NextCursor continues it; it is absent on
// the last page.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// pageOf makes the page of a list from items, which the caller fetched
// with one more than the limit to learn whether more follow; key gives the
// sort key an item continues after.
func pageOf[T any](a *API, lq listQuery, items []T, key func(T) string) page[T] {
	p := page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) > lq.limit {
		p.Items = items[:lq.limit]
		plain, _ := json.Marshal(cursor{List: lq.list, Filter: lq.filters.Encode(), After: key(p.Items[lq.limit-1])})
		p.NextCursor = base64.RawURLEncoding.EncodeToString(a.Cursors.Seal(plain, cursorAAD))
	}
	return p
}
