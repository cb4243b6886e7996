package pgtest

import "testing"

func TestDatabaseURLsReplacesOnlyTheDatabase(t *testing.T) {
	tests := []struct {
		conn, want string
	}{
		{"postgres://u:p%40ss@db.example:5433/app?sslmode=require", "postgres://u:p%40ss@db.example:5433/t_1?sslmode=require"},
		{"postgresql://u@h1,h2:5433/app", "postgresql://u@h1,h2:5433/t_1"},
		{"postgres://u@host", "postgres://u@host/t_1"},
		{"postgres://u@host/", "postgres://u@host/t_1"},
		{"postgres://u@host?sslmode=disable", "postgres://u@host/t_1?sslmode=disable"},
		{"postgres://u@/app?host=/run/pg&dbname=other&application_name=x", "postgres://u@/t_1?host=/run/pg&application_name=x"},
		{"host=/run/pg user=u dbname=app", "host=/run/pg user=u dbname=app dbname='t_1'"},
	}
	for _, tt := range tests {
		url, err := databaseURLs(tt.conn)
		if err != nil {
			t.Errorf("databaseURLs(%q): %v", tt.conn, err)
			continue
		}
		if got := url("t_1"); got != tt.want {
			t.Errorf("databaseURLs(%q)(t_1) = %q, want %q", tt.conn, got, tt.want)
		}
	}
}
