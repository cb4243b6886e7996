package admin

import (
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/usage"
)

var planFixed = map[string]string{"created_at": "is read-only", "updated_at": "is read-only"}

func (a *API) listPlans(r *http.Request) (reply, error) {
	plans, err := a.Plans.List(r.Context())
	if err != nil {
		return reply{}, err
	}
	return ok(page[usage.Plan]{Items: plans}), nil
}

func (a *API) createPlan(r *http.Request) (reply, error) {
	var p usage.Plan
	if err := readJSON(r, &p, "a plan", planFixed); err != nil {
		return reply{}, err
	}
	created, err := a.Plans.Create(r.Context(), p)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: created, location: Path + "/plans/" + created.Name}, nil
}

func (a *API) getPlan(r *http.Request) (reply, error) {
	p, err := a.Plans.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		return reply{}, err
	}
	return ok(p), nil
}

// replacePlan replaces a plan's description and limits; the name in the
// body, if any, must be the one in the path, since subjects know the plan
// by it.
func (a *API) replacePlan(r *http.Request) (reply, error) {
	var p usage.Plan
	if err := readJSON(r, &p, "a plan", planFixed); err != nil {
		return reply{}, err
	}
	name := chi.URLParam(r, "name")
	if p.Name != "" && p.Name != name {
		return reply{}, invalidField("name", "never changes: subjects know the plan by it; create a new plan instead")
	}
	p.Name = name
	if _, err := a.Plans.Get(r.Context(), name); err != nil {
		return reply{}, err
	}
	updated, err := a.Plans.Update(r.Context(), p)
	if err != nil {
		return reply{}, err
	}
	return ok(updated), nil
}

func (a *API) deletePlan(r *http.Request) (reply, error) {
	return noContent, a.Plans.Delete(r.Context(), chi.URLParam(r, "name"))
}

func (a *API) listPlanSubjects(r *http.Request) (reply, error) {
	subjects, err := a.Plans.Subjects(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		return reply{}, err
	}
	return ok(page[string]{Items: subjects}), nil
}

// subjectParam is the {subject} of the path, which a client may send with
// its colon percent-encoded.
func subjectParam(r *http.Request) string {
	s := chi.URLParam(r, "subject")
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

func (a *API) assignPlan(r *http.Request) (reply, error) {
	return noContent, a.Plans.Assign(r.Context(), chi.URLParam(r, "name"), subjectParam(r))
}

func (a *API) unassignPlan(r *http.Request) (reply, error) {
	return noContent, a.Plans.Unassign(r.Context(), chi.URLParam(r, "name"), subjectParam(r))
}

// usageReport is the answer of GET /admin/usage.
type usageReport struct {
	Subject string        `json:"subject"`
	From    string        `json:"from"`
	To      string        `json:"to"`
	Items   []usage.Daily `json:"items"`
}

// getUsage reports a subject's calls by day and endpoint: subject is
// required; from and to are UTC days (YYYY-MM-DD), both included, and
// default to the last 30 days.
func (a *API) getUsage(r *http.Request) (reply, error) {
	q := r.URL.Query()
	for k := range q {
		if k != "subject" && k != "from" && k != "to" {
			return reply{}, badField(k, "is not a query parameter of this route, which takes subject, from and to")
		}
	}
	subject := q.Get("subject")
	if !usage.ValidSubject(subject) {
		return reply{}, badField("subject", `must be "client:" or "key:" followed by an ID`)
	}
	to := time.Now().UTC()
	from := to.AddDate(0, 0, -29)
	for _, d := range []struct {
		name string
		at   *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(d.name); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return reply{}, badField(d.name, "must be a day, YYYY-MM-DD")
			}
			*d.at = t
		}
	}
	days, err := a.Plans.Usage(r.Context(), subject, from, to)
	if err != nil {
		return reply{}, err
	}
	return ok(usageReport{Subject: subject, From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Items: days}), nil
}
