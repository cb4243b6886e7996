package admin_test

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/latchkey/latchkey/pkg/admin"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
)

// specPath is the admin API's OpenAPI document, from this package's
// directory, where go test runs.
const specPath = "../../docs/admin-api.yaml"

// route is one operation of the API: a method and a path under admin.Path,
// with parameters named as in the router ("/admin/clients/{id}").
type route struct{ method, path string }

func (r route) String() string { return r.method + " " + r.path }

// loadSpec parses the OpenAPI document and builds its model, failing the
// test if either goes wrong.
func loadSpec(t *testing.T) *v3.Document {
	t.Helper()
	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatalf("reading the admin API's OpenAPI document: %v", err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatalf("%s is not an OpenAPI document: %v", specPath, err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("%s does not build as an OpenAPI 3 model: %v", specPath, err)
	}
	if model == nil {
		t.Fatalf("%s built no model", specPath)
	}
	if !strings.HasPrefix(model.Model.Version, "3.1") {
		t.Errorf("%s declares openapi %q, want 3.1.x", specPath, model.Model.Version)
	}
	if model.Model.Paths == nil {
		t.Fatalf("%s has no paths", specPath)
	}
	return &model.Model
}

// specOperations returns every operation the document describes.
func specOperations(doc *v3.Document) map[route]*v3.Operation {
	ops := map[route]*v3.Operation{}
	for path, item := range doc.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			ops[route{strings.ToUpper(method), path}] = op
		}
	}
	return ops
}

// routerRoutes returns every route the admin API's router serves, as
// mounted at admin.Path. A zero API is enough to build the router.
func routerRoutes(t *testing.T) map[route]bool {
	t.Helper()
	routes := map[route]bool{}
	walk := func(method, path string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes[route{method, admin.Path + path}] = true
		return nil
	}
	if err := chi.Walk((&admin.API{}).Routes().(chi.Routes), walk); err != nil {
		t.Fatalf("walking the admin API's routes: %v", err)
	}
	if len(routes) == 0 {
		t.Fatal("the admin API's router has no routes")
	}
	return routes
}

// sorted returns the routes in a stable order, for readable failures.
func sorted[V any](m map[route]V) []route {
	rs := make([]route, 0, len(m))
	for r := range m {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b route) int { return strings.Compare(a.path+" "+a.method, b.path+" "+b.method) })
	return rs
}

func TestTheOpenAPIDocumentDescribesExactlyTheRoutesTheRouterServes(t *testing.T) {
	t.Parallel()
	ops := specOperations(loadSpec(t))
	routes := routerRoutes(t)
	for _, r := range sorted(routes) {
		if _, ok := ops[r]; !ok {
			t.Errorf("%s is served but missing from %s; describe it there, with its path parameters named as in Routes", r, specPath)
		}
	}
	for _, r := range sorted(ops) {
		if !routes[r] {
			t.Errorf("%s is in %s but the router does not serve it; want only the routes of admin.API.Routes", r, specPath)
		}
	}
}

func TestEveryOperationDeclaresAuthFailuresAndTheScopeItNeeds(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	schemes := map[string]bool{}
	if doc.Components != nil && doc.Components.SecuritySchemes != nil {
		for name := range doc.Components.SecuritySchemes.KeysFromOldest() {
			schemes[name] = true
		}
	}
	ids := map[string]route{}
	ops := specOperations(doc)
	for _, r := range sorted(ops) {
		op := ops[r]
		if op.OperationId == "" {
			t.Errorf("%s has no operationId", r)
		} else if other, taken := ids[op.OperationId]; taken {
			t.Errorf("%s has operationId %q, which %s has too; want each operationId once", r, op.OperationId, other)
		}
		ids[op.OperationId] = r

		for _, status := range []string{"401", "403"} {
			if op.Responses == nil || op.Responses.Codes == nil || op.Responses.Codes.GetOrZero(status) == nil {
				t.Errorf("%s declares no %s response; every admin request can get one", r, status)
			}
		}

		// An operation's own security, or else the document's.
		security := op.Security
		if security == nil {
			security = doc.Security
		}
		want := client.AdminScope
		if r.method == http.MethodGet {
			want = client.AdminReadScope
		}
		if problem := scopeProblem(security, schemes, r.method == http.MethodGet); problem != "" {
			t.Errorf("%s: %s; want security that needs %s", r, problem, want)
		}
	}
}

// scopeProblem says what is wrong with an operation's security, or "" if
// it needs the right admin scope: for reading, latchkey:admin:read (with
// latchkey:admin as the alternative); for anything else, latchkey:admin in
// every alternative, so that a read-only token is never enough.
func scopeProblem(security []*base.SecurityRequirement, schemes map[string]bool, read bool) string {
	if len(security) == 0 {
		return "it declares no security"
	}
	allowsRead := false
	for _, req := range security {
		if req == nil || req.ContainsEmptyRequirement || req.Requirements == nil || req.Requirements.Len() == 0 {
			return "it lets requests without a token through (an empty security requirement)"
		}
		for name, scopes := range req.Requirements.FromOldest() {
			if !schemes[name] {
				return fmt.Sprintf("it names the security scheme %q, which components.securitySchemes does not define", name)
			}
			for _, s := range scopes {
				if s != client.AdminScope && s != client.AdminReadScope {
					return fmt.Sprintf("it lists the scope %q, which is not an admin scope", s)
				}
			}
			switch {
			case slices.Equal(scopes, []string{client.AdminReadScope}):
				allowsRead = true
			case !slices.Equal(scopes, []string{client.AdminScope}):
				return fmt.Sprintf("it asks for the scopes %q together; want one scope per alternative", scopes)
			}
		}
	}
	switch {
	case read && !allowsRead:
		return "a token with only " + client.AdminReadScope + " is not allowed to read"
	case !read && allowsRead:
		return "a token with only " + client.AdminReadScope + " is allowed to change things"
	}
	return ""
}

func TestTheAuditActionFilterListsEveryActionLatchkeyRecords(t *testing.T) {
	t.Parallel()
	r := route{http.MethodGet, admin.Path + "/audit-events"}
	op := specOperations(loadSpec(t))[r]
	if op == nil {
		t.Fatalf("%s is missing from %s", r, specPath)
	}
	var enum []string
	for _, p := range op.Parameters {
		if p.Name != "action" || p.In != "query" || p.Schema == nil {
			continue
		}
		for _, v := range p.Schema.Schema().Enum {
			enum = append(enum, v.Value)
		}
	}
	if len(enum) == 0 {
		t.Fatalf("%s has no query parameter action with an enum; want one listing audit.Actions", r)
	}
	for _, a := range audit.Actions {
		if !slices.Contains(enum, a) {
			t.Errorf("%s: the action parameter's enum lacks %q, an action Latchkey records; add it", r, a)
		}
	}
	for _, a := range enum {
		if !slices.Contains(audit.Actions, a) {
			t.Errorf("%s: the action parameter's enum lists %q, which is not in audit.Actions; remove it", r, a)
		}
	}
}
