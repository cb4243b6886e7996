package admin

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
)

// listAuditEvents lists the audit log, newest first, filtered by actor,
// action, target and time.
func (a *API) listAuditEvents(r *http.Request) (reply, error) {
	lq, err := a.parseList(r, "audit-events", "actor", "action", "target", "since", "until")
	if err != nil {
		return reply{}, err
	}
	q := audit.Query{Actor: lq.filters.Get("actor"), Action: lq.filters.Get("action"), Target: lq.filters.Get("target"), Limit: lq.limit + 1}
	if q.Action != "" && !slices.Contains(audit.Actions, q.Action) {
		return reply{}, badField("action", "is not an action Latchkey records (%s)", strings.Join(audit.Actions, ", "))
	}
	for _, f := range []struct {
		name string
		into *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := lq.filters.Get(f.name); v != "" {
			if *f.into, err = time.Parse(time.RFC3339, v); err != nil {
				return reply{}, badField(f.name, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
		}
	}
	if lq.after != "" {
		if q.BeforeID, err = strconv.ParseInt(lq.after, 10, 64); err != nil {
			return reply{}, badField("cursor", "is not a cursor of this list")
		}
	}
	events, err := a.Audit.List(r.Context(), q)
	if err != nil {
		return reply{}, err
	}
	return ok(pageOf(a, lq, events, func(e audit.Event) string { return strconv.FormatInt(e.ID, 10) })), nil
}
