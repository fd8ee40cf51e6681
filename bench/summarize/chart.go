package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// chartInfo is the provenance written at the top of the chart, so that an
// image copied into a README still says where its numbers came from
// (issue 8: "with the date, machine and command").
type chartInfo struct {
	date, machine, command string
}

// The chart is hand-written SVG with no script, no external font and no
// stylesheet, because GitHub serves README images through a proxy that
// drops all three. A white background keeps it legible in dark mode.
const (
	chartFont = `-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif`

	colorText  = "#1f2328"
	colorMuted = "#59636e"
	colorGrid  = "#d1d9e0"
	colorBase  = "#0969da" // the -base server: duplex
	colorKin   = "#80ccff" // its variants, such as duplex-detach
	colorPeer  = "#8c959f"
	colorFloor = "#eff2f5" // the floor, drawn hollow: a bound, not a peer

	margin   = 24  // around the chart
	gap      = 32  // between panels
	panelW   = 410 // one panel, labels and values included
	barH     = 14
	rowPitch = 21
	valueW   = 78 // room right of the longest bar for its label
)

// writeSVG draws one panel per scenario, two panels to a row, with one
// horizontal bar per server at its median cost, on a linear scale from
// zero. The idle panel spans 118 B to 25 KB; a log scale would make the
// floor look a third of duplex's size rather than a hundred and fiftieth,
// so every bar carries its value instead.
func (t *table) writeSVG(w io.Writer, info chartInfo, base, floor string) {
	cols := 2
	if len(t.scenarios) < 2 {
		cols = 1
	}
	rows := (len(t.scenarios) + cols - 1) / cols
	labelW := 0
	for _, sv := range t.servers {
		labelW = max(labelW, textWidth(sv, 12))
	}
	labelW += 10
	panelH := 30 + len(t.servers)*rowPitch + 22

	// The title, then a line each for the machine and the command.
	var sub []string
	for _, s := range []string{info.machine, info.command} {
		if s != "" {
			sub = append(sub, s)
		}
	}
	headH := margin + 34 + 18*len(sub) + 10
	legendY := headH + rows*(panelH+gap) - gap + 18
	width := 2*margin + cols*panelW + (cols-1)*gap
	height := legendY + 18 + margin

	title := "duplex and its peers: server cost, lower is better"
	if info.date != "" {
		title += ", " + info.date
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s" font-size="12" fill="%s">`+"\n",
		width, height, width, height, chartFont, colorText)
	fmt.Fprintf(w, "<title>%s</title>\n", esc(title))
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="17" font-weight="600">%s</text>`+"\n", margin, margin+14, esc(title))
	for i, s := range sub {
		fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", margin, margin+34+18*i, colorMuted, esc(s))
	}

	for i, sc := range t.scenarios {
		x := margin + (i%cols)*(panelW+gap)
		y := headH + (i/cols)*(panelH+gap)
		t.writePanel(w, sc, x, y, labelW, base, floor)
	}
	writeLegend(w, margin, legendY, t.servers, base, floor)
	fmt.Fprintln(w, "</svg>")
}

// writePanel draws scenario sc with its top left corner at x, y.
func (t *table) writePanel(w io.Writer, sc string, x, y, labelW int, base, floor string) {
	idle := t.mode(sc) == "idle"
	top := 0.0
	for _, sv := range t.servers {
		if v := t.cell(sc, sv).median(cost); !math.IsNaN(v) {
			top = math.Max(top, v)
		}
	}
	step := niceStep(top / 5)
	axisMax := step * math.Ceil(top/step)
	if axisMax == 0 {
		axisMax = 1
	}
	plotX := x + labelW
	plotW := panelW - labelW - valueW
	scale := float64(plotW) / axisMax

	fmt.Fprintf(w, `<g class="panel" data-scenario="%s">`+"\n", esc(sc))
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="13" font-weight="600">%s</text>`+"\n", x, y+14, esc(t.label(sc)))
	barsY := y + 30
	bottom := barsY + len(t.servers)*rowPitch
	for v := 0.0; v <= axisMax+step/2; v += step {
		gx := float64(plotX) + v*scale
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1"/>`+"\n", gx, barsY-4, gx, bottom, colorGrid)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" font-size="11" fill="%s" text-anchor="middle">%s</text>`+"\n", gx, bottom+14, colorMuted, tick(v, step))
	}
	for i, sv := range t.servers {
		c := t.cell(sc, sv)
		v := c.median(cost)
		ry := barsY + i*rowPitch
		weight := ""
		if sv == base {
			weight = ` font-weight="600"`
		}
		fmt.Fprintf(w, `<g class="row" data-server="%s">`+"\n", esc(sv))
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end"%s>%s</text>`+"\n", plotX-8, ry+barH-3, weight, esc(sv))
		label := value(v, idle)
		if c.errors() > 0 || c.failed > 0 {
			label += " ⚠"
		}
		end := float64(plotX)
		if !math.IsNaN(v) {
			// At least 2 px, so that the floor's 118 B still shows as a bar.
			bw := math.Max(v*scale, 2)
			fill, stroke := barColor(sv, base, floor)
			fmt.Fprintf(w, `<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s"%s><title>%s, %s: %s (median of %d)</title></rect>`+"\n",
				plotX, ry, bw, barH, fill, stroke, esc(sv), esc(sc), esc(label), len(c.runs))
			end += bw
		}
		// A white halo keeps the label readable where it crosses a grid line.
		fmt.Fprintf(w, `<text class="value" x="%.1f" y="%d"%s stroke="#ffffff" stroke-width="3" paint-order="stroke">%s</text>`+"\n",
			end+5, ry+barH-3, weight, esc(label))
		fmt.Fprintln(w, "</g>")
	}
	fmt.Fprintln(w, "</g>")
}

// writeLegend explains the colours of the servers shown, at x, y.
func writeLegend(w io.Writer, x, y int, servers []string, base, floor string) {
	kinds := []struct{ server, text string }{
		{base, base},
		{base + "-", base + " variant"},
		{"", "peer library"},
		{floor, floor + " (a bound, not a library)"},
	}
	shown := map[string]bool{}
	for _, sv := range servers {
		fill, _ := barColor(sv, base, floor)
		shown[fill] = true
	}
	fmt.Fprintf(w, `<g class="legend" font-size="11" fill="%s">`+"\n", colorMuted)
	lx := x
	for _, k := range kinds {
		fill, stroke := barColor(k.server, base, floor)
		if !shown[fill] {
			continue
		}
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"%s/>`, lx, y-10, fill, stroke)
		fmt.Fprintf(w, `<text x="%d" y="%d">%s</text>`+"\n", lx+17, y, esc(k.text))
		lx += 17 + textWidth(k.text, 11) + 18
	}
	note := "⚠ marks errors."
	if shown[colorFloor] {
		note = floor + ": one epoll loop that finds frame boundaries and unmasks, nothing more; with deflate it does not inflate. " + note
	}
	fmt.Fprintf(w, `<text x="%d" y="%d">%s</text>`+"\n", x, y+18, esc(note))
	fmt.Fprintln(w, "</g>")
}

// barColor is the fill, and any stroke attribute, of server sv's bars.
func barColor(sv, base, floor string) (fill, stroke string) {
	switch {
	case sv == base:
		return colorBase, ""
	case strings.HasPrefix(sv, base+"-"):
		return colorKin, ""
	case sv == floor || strings.HasPrefix(sv, floor+"-"):
		return colorFloor, ` stroke="` + colorPeer + `" stroke-width="1"`
	}
	return colorPeer, ""
}

// mode is the mode of scenario sc's first result: "echo" or "idle".
func (t *table) mode(sc string) string {
	for _, sv := range t.servers {
		if c := t.cell(sc, sv); len(c.runs) > 0 {
			return c.runs[0].Mode
		}
	}
	return ""
}

// value labels a bar: microseconds per message, or whole bytes per idle
// connection with thousands separators.
func value(v float64, idle bool) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case idle:
		return thousands(int64(math.Round(v))) + " B"
	}
	return num(v) + " µs"
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// niceStep rounds x up to 1, 2, 2.5 or 5 times a power of ten, for grid
// lines at round values.
func niceStep(x float64) float64 {
	if x <= 0 || math.IsNaN(x) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if x <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// tick labels a grid line: 20k rather than 20000, and only as many
// decimals as the step needs.
func tick(v, step float64) string {
	if v >= 1000 && step >= 1000 {
		return fmt.Sprintf("%gk", v/1000)
	}
	return fmt.Sprintf("%g", math.Round(v*100)/100)
}

// textWidth estimates the width in pixels of s in a sans-serif font of the
// given size; SVG has no way to measure text without a script.
func textWidth(s string, size int) int {
	return int(float64(len([]rune(s))*size) * 0.58)
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
