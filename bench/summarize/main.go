// Command summarize turns the JSON results of bench/run.sh into markdown:
// medians over the repetitions, and each server's cost as a ratio to
// duplex's and to the floor's.
//
// It reads DIR/SCENARIO/SERVER/REP.json, as written by duplex bench --json.
// With -svg FILE it also draws the medians as a bar chart, one panel per
// scenario, for the README.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// result is the part of duplex bench's JSON output used here.
type result struct {
	Mode            string  `json:"mode"`
	Conns           int     `json:"conns"`
	Target          int     `json:"target_conns"`
	Size            int     `json:"size"`
	Compress        bool    `json:"compress"`
	Text            bool    `json:"text"`
	MsgsPerSec      float64 `json:"msgs_per_sec"`
	Errors          int64   `json:"errors"`
	ClientCPUPerMsg float64 `json:"client_cpu_us_per_msg"`
	Latency         struct {
		P99 float64 `json:"p99"`
	} `json:"latency_us"`
	Server *struct {
		CPUPerMsg  float64 `json:"cpu_us_per_msg"`
		Util       float64 `json:"cpu_util"`
		MemPerConn float64 `json:"mem_bytes_per_conn"`
	} `json:"server"`
}

// cell is one server in one scenario, over its repetitions.
type cell struct {
	runs   []result
	failed int // repetitions with no result at all
}

func (c *cell) median(f func(r *result) float64) float64 {
	var v []float64
	for i := range c.runs {
		v = append(v, f(&c.runs[i]))
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (c *cell) errors() int64 {
	var n int64
	for _, r := range c.runs {
		n += r.Errors
	}
	return n
}

// cost is the figure compared across servers: server CPU per message for
// echo, the round trip's p99 for one connection, resident bytes per
// connection for idle.
func cost(r *result) float64 {
	if latencyRun(r) {
		return r.Latency.P99
	}
	if r.Server == nil {
		return math.NaN()
	}
	if r.Mode == "idle" {
		return r.Server.MemPerConn
	}
	return r.Server.CPUPerMsg
}

// latencyRun reports whether r is the one-connection echo, where what is
// compared is the round trip's p99, not the server's CPU per message.
func latencyRun(r *result) bool { return r.Mode != "idle" && r.Target == 1 }

func main() {
	dir := flag.String("dir", "", "results directory")
	servers := flag.String("servers", "duplex gorilla coder gobwas gws floor floor-goroutine", "servers, in column order")
	scenarios := flag.String("scenarios", "1k 64k deflate idle", "scenarios, in row order")
	base := flag.String("base", "duplex", "the server others are compared with")
	floor := flag.String("floor", "floor", "the floor server")
	svg := flag.String("svg", "", "also write a bar chart to this `file`")
	var info chartInfo
	flag.StringVar(&info.date, "date", "", "date of the runs, for the chart's title (default: that of the newest result)")
	flag.StringVar(&info.machine, "machine", "", "machine the runs were on, for the chart")
	flag.StringVar(&info.command, "command", "", "command that made the results, for the chart")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: summarize -dir DIR [-servers LIST] [-scenarios LIST] [-svg FILE [-date D] [-machine M] [-command C]]")
		os.Exit(2)
	}
	t := load(*dir, strings.Fields(*scenarios), strings.Fields(*servers))
	t.write(os.Stdout, *base, *floor)
	if *svg != "" {
		if info.date == "" && !t.newest.IsZero() {
			info.date = t.newest.UTC().Format(time.DateOnly)
		}
		var b bytes.Buffer
		t.writeSVG(&b, info, *base, *floor)
		if err := os.WriteFile(*svg, b.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "summarize:", err)
			os.Exit(1)
		}
	}
}

type table struct {
	scenarios, servers []string
	cells              map[[2]string]*cell
	newest             time.Time // modification time of the newest result
}

func load(dir string, scenarios, servers []string) *table {
	t := &table{scenarios: scenarios, servers: servers, cells: map[[2]string]*cell{}}
	for _, sc := range scenarios {
		for _, sv := range servers {
			c := &cell{}
			t.cells[[2]string{sc, sv}] = c
			files, _ := filepath.Glob(filepath.Join(dir, sc, sv, "*.json"))
			for _, f := range files {
				if fi, err := os.Stat(f); err == nil && fi.ModTime().After(t.newest) {
					t.newest = fi.ModTime()
				}
				b, err := os.ReadFile(f)
				var r result
				if err != nil || json.Unmarshal(b, &r) != nil || r.Mode == "" {
					c.failed++
					continue
				}
				c.runs = append(c.runs, r)
			}
		}
	}
	return t
}

// cell returns the results of server sv in scenario sc, empty if it was
// not run.
func (t *table) cell(sc, sv string) *cell {
	if c := t.cells[[2]string{sc, sv}]; c != nil {
		return c
	}
	return &cell{}
}

// label describes a scenario from its first result.
func (t *table) label(sc string) string {
	for _, sv := range t.servers {
		if c := t.cell(sc, sv); len(c.runs) > 0 {
			r := c.runs[0]
			if r.Mode == "idle" {
				return fmt.Sprintf("%d idle connections, bytes per connection", r.Target)
			}
			kind := "binary"
			if r.Text {
				kind = "text"
			}
			if r.Compress {
				kind += ", deflate"
			}
			if latencyRun(&r) {
				return fmt.Sprintf("1 conn × %s %s echo, round trip p99 µs", size(r.Size), kind)
			}
			return fmt.Sprintf("%d conns × %s %s echo, server µs/msg", r.Target, size(r.Size), kind)
		}
	}
	return sc + " (no results)"
}

func size(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func (t *table) write(w io.Writer, base, floor string) {
	// The overview: one row per scenario, one column per server, as in
	// issue 8.
	fmt.Fprintf(w, "| scenario (median) | %s |\n|---|%s\n", strings.Join(t.servers, " | "), strings.Repeat("---|", len(t.servers)))
	for _, sc := range t.scenarios {
		fmt.Fprintf(w, "| %s |", t.label(sc))
		for _, sv := range t.servers {
			c := t.cell(sc, sv)
			mark := ""
			if c.errors() > 0 || c.failed > 0 {
				mark = " ⚠"
			}
			fmt.Fprintf(w, " %s%s |", num(c.median(cost)), mark)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)

	// The details: ratios, throughput, latency and the load generator's
	// own cost, per scenario.
	for _, sc := range t.scenarios {
		idle, latency := false, false
		for _, sv := range t.servers {
			if c := t.cell(sc, sv); len(c.runs) > 0 {
				idle, latency = c.runs[0].Mode == "idle", latencyRun(&c.runs[0])
				break
			}
		}
		// The column beside msgs/s: what cost is not.
		costName, otherName := "server µs/msg", "p99 µs"
		other := func(r *result) float64 { return r.Latency.P99 }
		if latency {
			costName, otherName = "round trip p99 µs", "server µs/msg"
			other = func(r *result) float64 {
				if r.Server == nil {
					return math.NaN()
				}
				return r.Server.CPUPerMsg
			}
		}
		fmt.Fprintf(w, "### %s\n\n", t.label(sc))
		b := t.cell(sc, base).median(cost)
		f := t.cell(sc, floor).median(cost)
		if idle {
			fmt.Fprintf(w, "| server | bytes/conn | ÷ %s | ÷ %s | p99 ping µs | runs | errors |\n|---|---|---|---|---|---|---|\n", base, floor)
		} else {
			fmt.Fprintf(w, "| server | %s | ÷ %s | ÷ %s | msgs/s | %s | server core use | load gen µs/msg | runs | errors |\n|---|---|---|---|---|---|---|---|---|---|\n", costName, base, floor, otherName)
		}
		for _, sv := range t.servers {
			c := t.cell(sc, sv)
			v := c.median(cost)
			runs := fmt.Sprintf("%d", len(c.runs))
			if c.failed > 0 {
				runs += fmt.Sprintf(" (+%d failed)", c.failed)
			}
			if idle {
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d |\n", sv, num(v), num(v/b), num(v/f),
					num(c.median(func(r *result) float64 { return r.Latency.P99 })), runs, c.errors())
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", sv, num(v), num(v/b), num(v/f),
				num(c.median(func(r *result) float64 { return r.MsgsPerSec })),
				num(c.median(other)),
				pct(c.median(func(r *result) float64 {
					if r.Server == nil {
						return math.NaN()
					}
					return r.Server.Util
				})),
				num(c.median(func(r *result) float64 { return r.ClientCPUPerMsg })), runs, c.errors())
		}
		fmt.Fprintln(w)
	}
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}
