package loadgen

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes r as a small table for people.
func WriteText(w io.Writer, r *Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "duplex bench %s\n%s\n\n", r.URL, r.Describe())
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, row := range r.rows() {
		fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
	}
	tw.Flush()
	if r.Mode == "pubsub" && r.Rate > 0 && r.Seconds > 0 && float64(r.Publishes) < 0.9*r.Rate*r.Hold {
		fmt.Fprintf(&b, "\npublishes fell behind the rate asked (%s/s): each waited for the server; more --publishers send more at once\n",
			strconv.FormatFloat(r.Rate, 'f', -1, 64))
	}
	if r.FirstError != "" {
		fmt.Fprintf(&b, "\nfirst error: %s\n", r.FirstError)
	}
	if r.Interrupted {
		b.WriteString("\ninterrupted before the end\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// rows returns the measurements as name, value pairs.
func (r *Result) rows() [][2]string {
	var rows [][2]string
	row := func(k, format string, a ...any) { rows = append(rows, [2]string{k, fmt.Sprintf(format, a...)}) }
	lat := "round trip"
	switch r.Mode {
	case "idle":
		row("connections", "%s of %s", group(int64(r.Conns)), group(int64(r.Target)))
		row("pongs", "%s", group(r.Msgs))
		lat = "ping"
	case "pubsub":
		row("subscribers", "%s of %s, on %s", group(int64(r.Conns)), group(int64(r.Target)), channels(r.Channels))
		if r.Rate > 0 {
			row("publishes", "%s (%s/s via %s)", group(r.Publishes), group(int64(float64(r.Publishes)/max(r.Seconds, 1e-9)+0.5)), r.PublishVia)
			row("deliveries", "%s of %s in %.2fs", group(r.Msgs), group(r.Expected), r.Seconds)
			row("deliveries/s", "%s", group(int64(r.MsgsPerSec+0.5)))
		}
		lat = "delivery"
	default:
		row("msgs/s", "%s", group(int64(r.MsgsPerSec+0.5)))
		row("MB/s", "%.1f", r.MBPerSec)
		row("messages", "%s in %.2fs", group(r.Msgs), r.Seconds)
	}
	row("errors", "%s", group(r.Errors))
	if r.Mode != "pubsub" || r.Rate > 0 {
		row(lat+" p50", "%s", micros(r.Latency.P50))
		row(lat+" p90", "%s", micros(r.Latency.P90))
		row(lat+" p99", "%s", micros(r.Latency.P99))
		row(lat+" p99.9", "%s", micros(r.Latency.P999))
		row(lat+" max", "%s", micros(r.Latency.Max))
	}
	switch {
	case r.Mode == "echo":
		row("load gen CPU/msg", "%.2f µs", r.ClientCPUPerMsg)
	case r.Mode == "pubsub" && r.Rate > 0:
		row("load gen CPU/delivery", "%.2f µs", r.ClientCPUPerMsg)
	default:
		row("load gen CPU", "%.2fs", r.ClientCPU)
	}
	if s := r.Server; s != nil {
		if r.Mode == "pubsub" && r.Rate > 0 {
			row("server CPU/delivery", "%.2f µs (%.0f%% of one core)", s.CPUPerMsg, 100*s.Util)
		}
		if r.Mode == "echo" {
			row("server CPU/msg", "%.2f µs (%.0f%% of one core)", s.CPUPerMsg, 100*s.Util)
		} else {
			switch {
			case r.Mode == "pubsub" && r.Rate <= 0:
				// Idle subscribers cost CPU only for heartbeats.
				row("server CPU", "%.2fs (%.1f%% of one core)", s.CPU, 100*s.Util)
			case r.Mode != "pubsub":
				row("server CPU", "%.2fs", s.CPU)
			}
			row("server mem/conn", "%s B anonymous (heap, stacks); %s B of RSS", group(int64(s.MemPerConn+0.5)), group(int64(s.MemPerConnRSS+0.5)))
			if s.MarginalPerConn != 0 {
				row("  one more conn", "%s B (growth over the second half)", group(int64(s.MarginalPerConn+0.5)))
			}
		}
		row("server RSS", "%s → %s", mebibytes(s.RSSBefore), mebibytes(s.RSSAfter))
	}
	return rows
}

// Describe says in a line what was run.
func (r *Result) Describe() string {
	hold := time.Duration(r.Hold * float64(time.Second))
	switch {
	case r.Mode == "idle":
		return fmt.Sprintf("idle: %s connections, one ping each, held %v", group(int64(r.Target)), hold)
	case r.Mode == "pubsub" && r.Rate <= 0:
		return fmt.Sprintf("pubsub: %s idle subscribers on %s, held %v", group(int64(r.Target)), channels(r.Channels), hold)
	case r.Mode == "pubsub":
		return fmt.Sprintf("pubsub: %s subscribers on %s, %s publishes/s of %s via %s for %v",
			group(int64(r.Target)), channels(r.Channels), strconv.FormatFloat(r.Rate, 'f', -1, 64), sizeString(r.Size), r.PublishVia, hold)
	}
	kind := "binary"
	if r.Text {
		kind = "text"
	}
	if r.Compress {
		kind += ", deflate"
	}
	return fmt.Sprintf("echo: %d connections × %s %s, pipeline %d, %.1fs", r.Target, sizeString(r.Size), kind, r.Pipeline, r.Seconds)
}

func channels(n int) string {
	if n == 1 {
		return "1 channel"
	}
	return group(int64(n)) + " channels"
}

func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// group writes n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func micros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2f ms", us/1e3)
	}
	return fmt.Sprintf("%.1f µs", us)
}

func mebibytes(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

//go:embed report.html
var reportHTML string

var reportTmpl = template.Must(template.New("report").Parse(reportHTML))

// chart is a bar chart laid out for the SVG in report.html.
type chart struct {
	Title         string
	Width, Height float64
	Axis, LabelY  float64 // heights of the baseline and of the labels
	Bars          []bar
}

type bar struct {
	X, Y, W, H float64
	Label      string // under the bar
	Value      string // above it
	Tip        string // shown on hover
}

const (
	chartW   = 560.0
	chartH   = 220.0
	chartTop = 24.0 // room for the values
	chartBot = 24.0 // room for the labels
)

// barChart lays out values as bars scaled to the largest. On a log scale,
// which suits latency percentiles that span orders of magnitude, the
// smallest value gets a short bar rather than none.
func barChart(title string, labels []string, values []float64, logScale bool, format func(float64) string) chart {
	c := chart{Title: title, Width: chartW, Height: chartH, Axis: chartH - chartBot, LabelY: chartH - 8}
	top, bottom := 0.0, math.Inf(1)
	for _, v := range values {
		top = max(top, v)
		if v > 0 {
			bottom = min(bottom, v)
		}
	}
	if len(values) == 0 || top <= 0 {
		return c
	}
	scale := func(v float64) float64 { return v / top }
	if logScale {
		lo := bottom / 2
		scale = func(v float64) float64 {
			if v <= lo {
				return 0
			}
			return math.Log(v/lo) / math.Log(top/lo)
		}
	}
	round := func(x float64) float64 { return math.Round(x*10) / 10 }
	slot := chartW / float64(len(values))
	plot := chartH - chartTop - chartBot
	for i, v := range values {
		h := round(plot * scale(v))
		b := bar{X: round(float64(i)*slot + slot*0.15), W: round(slot * 0.7), H: h, Y: round(chartTop + plot - h), Value: format(v)}
		if labels != nil {
			b.Label = labels[i]
		}
		b.Tip = strings.TrimSpace(b.Label + " " + b.Value)
		if b.Value == "" {
			b.Tip = group(int64(v + 0.5))
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

// WriteHTML writes r as a self-contained HTML page with SVG charts of the
// latency percentiles, the throughput over time and the CPU per message.
// It needs no script and no network to display.
func WriteHTML(w io.Writer, r *Result) error {
	var charts []chart
	latTitle := "Round-trip latency (log scale)"
	switch r.Mode {
	case "idle":
		latTitle = "Ping round trip (log scale)"
	case "pubsub":
		latTitle = "Publish-to-delivery latency (log scale)"
	}
	charts = append(charts, barChart(latTitle,
		[]string{"p50", "p90", "p99", "p99.9", "max"},
		[]float64{r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999, r.Latency.Max},
		true, micros))
	if tl := r.Timeline; tl != nil && len(tl.MsgsPerSec) > 0 {
		labels := make([]string, len(tl.MsgsPerSec))
		every := (len(labels) + 9) / 10
		for i := range labels {
			if i%every == 0 {
				labels[i] = strconv.FormatFloat(float64(i+1)*tl.StepSeconds, 'g', 3, 64) + "s"
			}
		}
		c := barChart("", labels, tl.MsgsPerSec, false, func(float64) string { return "" })
		c.Title = fmt.Sprintf("Throughput over time (messages/s; mean %s, %.1f MB/s)", group(int64(r.MsgsPerSec+0.5)), r.MBPerSec)
		if r.Mode == "pubsub" {
			c.Title = fmt.Sprintf("Deliveries over time (per second; mean %s)", group(int64(r.MsgsPerSec+0.5)))
		}
		charts = append(charts, c)
	}
	if r.Mode == "echo" && r.Msgs > 0 {
		labels := []string{"load generator"}
		values := []float64{r.ClientCPUPerMsg}
		if r.Server != nil {
			labels = append(labels, "server")
			values = append(values, r.Server.CPUPerMsg)
		}
		charts = append(charts, barChart("CPU per message (µs)", labels, values, false,
			func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + " µs" }))
	}
	return reportTmpl.Execute(w, map[string]any{
		"Title":    "duplex bench " + r.URL,
		"Describe": r.Describe(),
		"Date":     time.Now().UTC().Format(time.RFC3339),
		"Rows":     r.rows(),
		"Charts":   charts,
		"Error":    r.FirstError,
	})
}
