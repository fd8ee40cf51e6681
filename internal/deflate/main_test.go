package deflate

import (
	"os"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// TestMain prints, after the tests, one line per peer a test skipped for
// (testkit.Missing: python3, for zlib), so that a skip is seen without -v.
func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }
