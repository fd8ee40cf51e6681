package main

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgRow is what the chart shows for one server in one scenario.
type svgRow struct {
	bars  int     // rect elements of class bar
	width float64 // of the last bar
	fill  string  // of the last bar
	value string  // the text of class value
}

// parseSVG checks that svg is well-formed XML with an svg root, and
// returns its rows by scenario and server, and all its text.
func parseSVG(t *testing.T, svg string) (map[[2]string]*svgRow, string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	rows := map[[2]string]*svgRow{}
	var (
		stack    []xml.StartElement
		text     strings.Builder
		sc, sv   string
		valueTag bool
	)
	attr := func(e xml.StartElement, name string) string {
		for _, a := range e.Attr {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v\n%s", err, svg)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 && (e.Name.Local != "svg" || e.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root element is %v; want svg in the SVG namespace", e.Name)
			}
			stack = append(stack, e)
			switch attr(e, "class") {
			case "panel":
				sc = attr(e, "data-scenario")
			case "row":
				sv = attr(e, "data-server")
				if rows[[2]string{sc, sv}] != nil {
					t.Errorf("two rows for %s in %s", sv, sc)
				}
				rows[[2]string{sc, sv}] = &svgRow{}
			case "bar":
				r := rows[[2]string{sc, sv}]
				r.bars++
				r.width, _ = strconv.ParseFloat(attr(e, "width"), 64)
				r.fill = attr(e, "fill")
			case "value":
				valueTag = true
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			valueTag = false
		case xml.CharData:
			if valueTag {
				rows[[2]string{sc, sv}].value += string(e)
			}
			if len(stack) > 0 && stack[len(stack)-1].Name.Local == "text" {
				text.Write(e)
				text.WriteByte('\n')
			}
		}
	}
	return rows, text.String()
}

func TestSVG(t *testing.T) {
	dir := fixture(t)
	tab := load(dir, []string{"1k", "idle"}, []string{"duplex", "gws", "floor"})
	var b strings.Builder
	info := chartInfo{date: "2026-11-24", machine: "Linux 6.18, Xeon, 2 cores", command: "R=3 bench/run.sh"}
	tab.writeSVG(&b, info, "duplex", "floor")
	rows, text := parseSVG(t, b.String())

	for _, want := range []string{info.date, info.machine, info.command,
		"100 conns × 1 KiB binary echo, server µs/msg", "19500 idle connections, bytes per connection",
		"floor (a bound, not a library)"} {
		if !strings.Contains(text, want) {
			t.Errorf("chart text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "duplex variant") {
		t.Errorf("legend explains a duplex variant, but none ran:\n%s", text)
	}
	for _, tt := range []struct {
		sc, sv string
		bars   int
		value  string
	}{
		{"1k", "duplex", 1, "6.00 µs"},
		{"1k", "gws", 1, "12.00 µs ⚠"},
		{"1k", "floor", 1, "4.00 µs"},
		{"idle", "duplex", 1, "200 B"},
		{"idle", "gws", 0, "n/a"}, // no results: a row with no bar
		{"idle", "floor", 1, "100 B"},
	} {
		r := rows[[2]string{tt.sc, tt.sv}]
		if r == nil {
			t.Errorf("no row for %s in %s", tt.sv, tt.sc)
			continue
		}
		if r.bars != tt.bars || r.value != tt.value {
			t.Errorf("%s in %s: %d bars labelled %q; want %d labelled %q", tt.sv, tt.sc, r.bars, r.value, tt.bars, tt.value)
		}
	}
	if len(rows) != 6 {
		t.Errorf("%d rows; want 6, one per server per scenario", len(rows))
	}

	// Bars share a linear scale from zero within a panel.
	duplex, gws := rows[[2]string{"1k", "duplex"}], rows[[2]string{"1k", "gws"}]
	if got := gws.width / duplex.width; math.Abs(got-2) > 0.01 {
		t.Errorf("gws bar is %.3f× duplex's; want 2× (12 µs against 6)", got)
	}
	// duplex stands out; the others do not share its colour.
	for k, r := range rows {
		if r.bars > 0 && (r.fill == colorBase) != (k[1] == "duplex") {
			t.Errorf("%s in %s filled %s; only duplex is %s", k[1], k[0], r.fill, colorBase)
		}
	}
}

func TestNewest(t *testing.T) {
	dir := fixture(t)
	want := time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "idle", "floor", "1.json"), want, want); err != nil {
		t.Fatal(err)
	}
	old := want.Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "idle", "duplex", "1.json"), old, old); err != nil {
		t.Fatal(err)
	}
	// The 1k results, written just now, are not asked for.
	if got := load(dir, []string{"idle"}, []string{"duplex", "floor"}).newest; !got.Equal(want) {
		t.Errorf("newest = %v; want %v", got, want)
	}
}

func TestThousands(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0"}, {118, "118"}, {4788, "4,788"}, {24936, "24,936"}, {1234567, "1,234,567"}, {-1234, "-1,234"},
	} {
		if got := thousands(tt.n); got != tt.want {
			t.Errorf("thousands(%d) = %q; want %q", tt.n, got, tt.want)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for _, tt := range []struct{ x, want float64 }{
		{1.63, 2}, {9.4, 10}, {8.48, 10}, {4987, 5000}, {2.2, 2.5}, {0.3, 0.5}, {0, 1},
	} {
		if got := niceStep(tt.x); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("niceStep(%g) = %g; want %g", tt.x, got, tt.want)
		}
	}
}
