package interop

import (
	"os"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// TestMain prints, after the tests, one line per peer that was missing
// (testkit.Missing), so that a skipped peer is seen without -v.
func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }
