package postgres_test

import (
	"context"
	"log/slog"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/storage/postgres"
)

// notAStoreCall are the Store methods the test below leaves out, and why.
var notAStoreCall = map[string]string{
	"Close":             "returns no error",
	"PoolStat":          "returns no error",
	"SessionStore":      "tested on its own below",
	"ListenForChanges":  "retries until its context ends, and returns nothing",
	"Commit":            "needs a transaction BeginTX began, which cannot begin without a database",
	"Rollback":          "needs a transaction BeginTX began, which cannot begin without a database",
	"GuardTransactions": "only records transactions; it touches no database",
}

// Every call that fails because the database cannot be reached says so
// (server.Unavailable), so that whatever handler it reaches answers 503 and
// the client retries: the handlers cannot tell from pgx's errors, which
// they do not import. Each method is called with harmless arguments on a
// store whose database refuses connections.
func TestEveryCallReportsAnUnreachableDatabaseAsUnavailable(t *testing.T) {
	t.Parallel()
	s := unreachable(t)
	v := reflect.ValueOf(s)
	typ := v.Type()
	errType := reflect.TypeFor[error]()
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		if _, skip := notAStoreCall[m.Name]; skip {
			continue
		}
		ft := m.Type
		if ft.NumOut() == 0 || ft.Out(ft.NumOut()-1) != errType {
			t.Errorf("%s returns no error: say in notAStoreCall why the test may leave it out", m.Name)
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			args := []reflect.Value{v}
			for j := 1; j < ft.NumIn(); j++ {
				args = append(args, harmless(ctx, ft.In(j)))
			}
			out := m.Func.Call(args)
			err, _ := out[len(out)-1].Interface().(error)
			if !server.Unavailable(err) {
				t.Errorf("with the database unreachable, %s returned %v: want an error that says the database is unavailable", m.Name, err)
			}
		})
	}
}

func TestTheSessionStoreReportsAnUnreachableDatabaseAsUnavailable(t *testing.T) {
	t.Parallel()
	ss := unreachable(t).SessionStore()
	_, _, findErr := ss.Find("token")
	for name, err := range map[string]error{
		"Find":   findErr,
		"Commit": ss.Commit("token", []byte("data"), time.Now().Add(time.Hour)),
		"Delete": ss.Delete("token"),
	} {
		if !server.Unavailable(err) {
			t.Errorf("%s returned %v, want an error that says the database is unavailable", name, err)
		}
	}
}

// unreachable is a store whose database refuses every connection: nothing
// listens on port 1.
func unreachable(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open("postgres://latchkey@127.0.0.1:1/latchkey?sslmode=disable", postgres.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// harmless is an argument of type typ that no method can fail on before it
// asks the database: the context, a non-nil pointer, a fosite request with
// its client and session, a function that does nothing, or a zero value.
func harmless(ctx context.Context, typ reflect.Type) reflect.Value {
	req := &fosite.Request{ID: "request", RequestedAt: time.Now(), Client: &fosite.DefaultClient{ID: "client"},
		Session: &fosite.DefaultSession{}, Form: url.Values{}}
	switch {
	case typ == reflect.TypeFor[context.Context]():
		return reflect.ValueOf(ctx)
	case typ == reflect.TypeFor[*slog.Logger]():
		return reflect.ValueOf(slog.New(slog.DiscardHandler))
	case typ == reflect.TypeFor[fosite.Requester]():
		return reflect.ValueOf(fosite.Requester(req))
	case typ == reflect.TypeFor[fosite.Session]():
		return reflect.ValueOf(fosite.Session(&fosite.DefaultSession{}))
	case typ.Kind() == reflect.Pointer:
		return reflect.New(typ.Elem())
	case typ.Kind() == reflect.Func:
		return reflect.MakeFunc(typ, func([]reflect.Value) []reflect.Value {
			out := make([]reflect.Value, typ.NumOut())
			for i := range out {
				out[i] = reflect.Zero(typ.Out(i))
			}
			return out
		})
	}
	return reflect.Zero(typ)
}
