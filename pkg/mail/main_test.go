package mail_test

import (
	"testing"

	"github.com/latchkey/latchkey/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
