package duplex_test

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's Go blocks from the declarations their markers name")

// The README's Go code is copied from Example functions, which the tests
// build and run, so that every snippet compiles and does what it says.
// Each ```go block follows a marker naming the file and the declarations
// it shows:
//
//	<!-- code: example_test.go echo Example -->
//
// TestREADMECode fails when a block differs from its declarations (after
// gofmt), names one that does not exist, or has no marker. To change a
// snippet, change the Example and run
//
//	go test -run TestREADMECode -update-readme .
func TestREADMECode(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := goBlocks(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go block: the snippets are gone, or their fences changed")
	}
	out := string(readme)
	stale := 0
	for i := len(blocks) - 1; i >= 0; i-- { // from the end, so offsets stay valid
		b := blocks[i]
		if b.file == "" {
			t.Errorf("README.md:%d: a Go block without a <!-- code: FILE NAME... --> marker; make it an Example", b.line)
			continue
		}
		want, err := declSource(b.file, b.names)
		if err != nil {
			t.Errorf("README.md:%d: %v", b.line, err)
			continue
		}
		got, err := format.Source([]byte(b.code))
		if err != nil {
			t.Errorf("README.md:%d: the block does not parse: %v", b.line, err)
			continue
		}
		if bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			continue
		}
		stale++
		if *updateREADME {
			out = out[:b.start] + indent(string(bytes.TrimSpace(want))+"\n", b.indent) + out[b.end:]
			continue
		}
		t.Errorf("README.md:%d differs from %s %s; run go test -run TestREADMECode -update-readme .\nREADME:\n%s\n%s:\n%s",
			b.line, b.file, strings.Join(b.names, " "), got, b.file, want)
	}
	if *updateREADME && stale > 0 {
		if err := os.WriteFile("README.md", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %d blocks of README.md", stale)
	}
}

// A goBlock is a ```go block of the README: its code without the list
// indentation, the byte range of its lines (fences excluded), and what
// its marker names.
type goBlock struct {
	line       int // of the opening fence, 1-based
	indent     string
	code       string
	start, end int
	file       string
	names      []string
}

var markerRE = regexp.MustCompile(`^\s*<!-- code: (\S+) ([^>]+?) -->\s*$`)

// goBlocks finds the ```go blocks of a Markdown text and the marker, if
// any, on the last non-blank line before each.
func goBlocks(md string) ([]goBlock, error) {
	var blocks []goBlock
	var file string
	var names []string
	off := 0
	lines := strings.SplitAfter(md, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		off += len(line)
		trimmed := strings.TrimSpace(line)
		if m := markerRE.FindStringSubmatch(line); m != nil {
			file, names = m[1], strings.Fields(m[2])
			continue
		}
		if trimmed == "" {
			continue
		}
		if !strings.HasPrefix(trimmed, "```") {
			file, names = "", nil
			continue
		}
		lang := strings.TrimPrefix(trimmed, "```")
		ind := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		b := goBlock{line: i + 1, indent: ind, start: off, file: file, names: names}
		file, names = "", nil
		var code strings.Builder
		closed := false
		for i++; i < len(lines); i++ {
			l := lines[i]
			if strings.TrimSpace(l) == "```" {
				b.end = off
				off += len(l)
				closed = true
				break
			}
			off += len(l)
			code.WriteString(strings.TrimPrefix(l, ind))
		}
		if !closed {
			return nil, fmt.Errorf("README.md:%d: a code block is never closed", b.line)
		}
		if lang == "go" {
			b.code = code.String()
			blocks = append(blocks, b)
		}
	}
	return blocks, nil
}

// declSource returns the named top-level declarations of a Go file, each
// with its doc comment, in the order given, as gofmt prints them.
func declSource(file string, names []string) ([]byte, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, name := range names {
		d := findDecl(f, name)
		if d == nil {
			return nil, fmt.Errorf("%s has no top-level declaration %s", file, name)
		}
		start := d.Pos()
		if doc := declDoc(d); doc != nil {
			start = doc.Pos()
		}
		parts = append(parts, string(src[fset.Position(start).Offset:fset.Position(d.End()).Offset]))
	}
	return format.Source([]byte(strings.Join(parts, "\n\n") + "\n"))
}

func findDecl(f *ast.File, name string) ast.Decl {
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil && d.Name.Name == name {
				return d
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.Name == name {
						return d
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.Name == name {
							return d
						}
					}
				}
			}
		}
	}
	return nil
}

func declDoc(d ast.Decl) *ast.CommentGroup {
	switch d := d.(type) {
	case *ast.FuncDecl:
		return d.Doc
	case *ast.GenDecl:
		return d.Doc
	}
	return nil
}

// indent puts prefix before every non-empty line of s.
func indent(s, prefix string) string {
	if prefix == "" {
		return s
	}
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// The test above is only as good as its parser of Markdown: these are the
// cases it must get right.
func TestGoBlocks(t *testing.T) {
	md := "# t\n\n<!-- code: a_test.go X Y -->\n```go\nfunc X() {}\n```\n\ntext\n\n```go\nloose()\n```\n\n" +
		"- item\n\n  <!-- code: b_test.go Z -->\n\n  ```go\n  func Z() {\n  \tz()\n  }\n  ```\n\n<!-- code: c_test.go W -->\nprose\n```go\nw()\n```\n```sh\nls\n```\n"
	blocks, err := goBlocks(md)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		line  int
		file  string
		names string
		code  string
	}
	wants := []want{
		{4, "a_test.go", "X Y", "func X() {}\n"},
		{10, "", "", "loose()\n"},
		{18, "b_test.go", "Z", "func Z() {\n\tz()\n}\n"},
		{26, "", "", "w()\n"}, // prose between marker and block: no marker
	}
	if len(blocks) != len(wants) {
		t.Fatalf("goBlocks found %d blocks; want %d: %+v", len(blocks), len(wants), blocks)
	}
	for i, w := range wants {
		b := blocks[i]
		if b.line != w.line || b.file != w.file || strings.Join(b.names, " ") != w.names || b.code != w.code {
			t.Errorf("block %d = line %d, %q %q, code %q; want line %d, %q %q, code %q",
				i, b.line, b.file, b.names, b.code, w.line, w.file, w.names, w.code)
		}
		if got := strings.TrimPrefix(md[b.start:b.end], b.indent); strings.ReplaceAll(got, "\n"+b.indent, "\n") != w.code {
			t.Errorf("block %d's range holds %q; want its code %q", i, md[b.start:b.end], w.code)
		}
	}
	if _, err := goBlocks("```go\nx()\n"); err == nil {
		t.Error("goBlocks accepted a block that is never closed")
	}
}

// The README's install line names the Go version go.mod requires, so that
// the two cannot drift apart when go.mod moves on.
func TestREADMEGoVersion(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"go install github.com/duplexws/duplex/cmd/duplex@latest",
		fmt.Sprintf("Go %s or newer", m[1]),
	} {
		if !bytes.Contains(readme, []byte(want)) {
			t.Errorf("README.md does not say %q (go.mod: go %s)", want, m[1])
		}
	}
}
