package duplex_test

import (
	"os"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// TestMain prints, after the tests, one line per peer a test skipped for
// (testkit.Missing), so that a skip is seen without -v.
func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }
