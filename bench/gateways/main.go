// Command gateways turns the JSON results of bench/gateways.sh into a
// markdown table: for each scenario, the median of each figure over the
// repetitions for every gateway, and each gateway's figure as a ratio to
// the first one's (duplex).
//
// It reads DIR/SCENARIO/SERVER/REP.json, as written by
// duplex bench --mode pubsub --json.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// result is the part of duplex bench's JSON output used here.
type result struct {
	Conns      int     `json:"conns"`
	Target     int     `json:"target_conns"`
	Channels   int     `json:"channels"`
	Rate       float64 `json:"publish_rate"`
	Hold       float64 `json:"hold_seconds"`
	Size       int     `json:"size"`
	Msgs       int64   `json:"msgs"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error"`
	Latency    struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"latency_us"`
	ClientCPUPerMsg float64 `json:"client_cpu_us_per_msg"`
	Server          *struct {
		CPUPerMsg     float64 `json:"cpu_us_per_msg"`
		Util          float64 `json:"cpu_util"`
		RSSBefore     int64   `json:"rss_before_bytes"`
		MemPerConnRSS float64 `json:"rss_bytes_per_conn"`
		MemPerConn    float64 `json:"mem_bytes_per_conn"`
	} `json:"server"`
}

// figure is one row of the table: a name, its unit and how to read it
// from a result. NaN means the result does not have it.
type figure struct {
	name string
	get  func(r *result) float64
}

func server(f func(r *result) float64) func(r *result) float64 {
	return func(r *result) float64 {
		if r.Server == nil {
			return math.NaN()
		}
		return f(r)
	}
}

var (
	rssPerConn  = figure{"server RSS growth per subscriber (bytes)", server(func(r *result) float64 { return r.Server.MemPerConnRSS })}
	anonPerConn = figure{"server anonymous memory per subscriber (bytes)", server(func(r *result) float64 { return r.Server.MemPerConn })}
	rssBefore   = figure{"server RSS before the first subscriber (MB)", server(func(r *result) float64 { return float64(r.Server.RSSBefore) / 1e6 })}
	cpuPerMsg   = figure{"server CPU per delivery (µs)", server(func(r *result) float64 { return r.Server.CPUPerMsg })}
	util        = figure{"server CPU use (% of one core)", server(func(r *result) float64 { return 100 * r.Server.Util })}
	rate        = figure{"deliveries/s", func(r *result) float64 { return r.MsgsPerSec }}
	p50         = figure{"latency p50 (µs)", func(r *result) float64 { return r.Latency.P50 }}
	p99         = figure{"latency p99 (µs)", func(r *result) float64 { return r.Latency.P99 }}
	clientCPU   = figure{"load generator CPU per delivery (µs)", func(r *result) float64 { return r.ClientCPUPerMsg }}
)

// figures lists the rows of each scenario; unknown scenarios get the
// delivery figures.
var figures = map[string][]figure{
	"idle":      {rssPerConn, anonPerConn, rssBefore, util},
	"fanout":    {cpuPerMsg, p50, p99, rate, util, clientCPU},
	"spread":    {cpuPerMsg, p50, p99, rate, util, clientCPU},
	"heartbeat": {util, rssPerConn},
}

// cell is one server in one scenario, over its repetitions.
type cell struct {
	runs   []result
	failed int // repetitions with no result at all
}

func (c *cell) median(f func(r *result) float64) float64 {
	var v []float64
	for i := range c.runs {
		if x := f(&c.runs[i]); !math.IsNaN(x) {
			v = append(v, x)
		}
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

// errors sums the errors of the runs, a failed run counting as one, and
// returns the first error message seen.
func (c *cell) errors() (n int64, first string) {
	n = int64(c.failed)
	for _, r := range c.runs {
		n += r.Errors
		if first == "" {
			first = r.FirstError
		}
	}
	return n, first
}

func load(dir, scenario, srv string) *cell {
	c := &cell{}
	files, _ := filepath.Glob(filepath.Join(dir, scenario, srv, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		var r result
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil || r.Conns == 0 {
			c.failed++
			continue
		}
		c.runs = append(c.runs, r)
	}
	return c
}

// describe says what the scenario's load was, from its first result.
func describe(scenario string, c *cell) string {
	if len(c.runs) == 0 {
		return scenario
	}
	r := c.runs[0]
	if r.Rate == 0 {
		return fmt.Sprintf("%s: %s idle subscribers, %s, held %gs", scenario, group(r.Target), channels(r.Channels), r.Hold)
	}
	return fmt.Sprintf("%s: %s subscribers, %s, %s publishes/s of %d bytes through the HTTP API",
		scenario, group(r.Target), channels(r.Channels), strconv.FormatFloat(r.Rate, 'f', -1, 64), r.Size)
}

func channels(n int) string {
	if n == 1 {
		return "one channel"
	}
	return group(n) + " channels, one subscriber each"
}

func group(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func format(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "–"
	case a >= 1000:
		return group(int(math.Round(v)))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func ratio(v, base float64) string {
	if math.IsNaN(v) || math.IsNaN(base) || base == 0 {
		return "–"
	}
	return strconv.FormatFloat(v/base, 'f', 2, 64) + "×"
}

// write prints one table per scenario.
func write(w io.Writer, dir string, scenarios, servers []string) {
	for _, sc := range scenarios {
		cells := make([]*cell, len(servers))
		for i, s := range servers {
			cells[i] = load(dir, sc, s)
		}
		head := cells[0]
		for _, c := range cells {
			if len(c.runs) > 0 {
				head = c
				break
			}
		}
		fmt.Fprintf(w, "**%s**\n\n", describe(sc, head))
		fmt.Fprintf(w, "| figure | %s |", strings.Join(servers, " | "))
		for _, s := range servers[1:] {
			fmt.Fprintf(w, " %s / %s |", s, servers[0])
		}
		fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", 2*len(servers)-1))
		rows, ok := figures[sc]
		if !ok {
			rows = figures["fanout"]
		}
		for _, f := range rows {
			fmt.Fprintf(w, "| %s |", f.name)
			vals := make([]float64, len(cells))
			for i, c := range cells {
				vals[i] = c.median(f.get)
				fmt.Fprintf(w, " %s |", format(vals[i]))
			}
			for i := 1; i < len(cells); i++ {
				fmt.Fprintf(w, " %s |", ratio(vals[i], vals[0]))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "| runs (errors) |")
		for _, c := range cells {
			n, _ := c.errors()
			mark := ""
			if n > 0 {
				mark = " ⚠"
			}
			fmt.Fprintf(w, " %d (%d)%s |", len(c.runs)+c.failed, n, mark)
		}
		fmt.Fprintf(w, "%s\n\n", strings.Repeat(" |", len(servers)-1))
		for i, c := range cells {
			if n, first := c.errors(); n > 0 {
				fmt.Fprintf(w, "⚠ %s, %s: %d errors; first: %s\n\n", sc, servers[i], n, first)
			}
		}
	}
}

func main() {
	dir := flag.String("dir", ".", "the `directory` of results: DIR/SCENARIO/SERVER/REP.json")
	scenarios := flag.String("scenarios", "idle fanout spread heartbeat", "`scenarios` to print, space-separated")
	servers := flag.String("servers", "duplex centrifugo", "`servers` to print, space-separated; the first is the base of the ratios")
	flag.Parse()
	sv := strings.Fields(*servers)
	if len(sv) == 0 {
		fmt.Fprintln(os.Stderr, "gateways: no servers")
		os.Exit(2)
	}
	write(os.Stdout, *dir, strings.Fields(*scenarios), sv)
}
