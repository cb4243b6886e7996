package postgres_test

import (
	"testing"

	"github.com/latchkey/latchkey/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
