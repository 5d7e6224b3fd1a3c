package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// WriteHTML writes a self-contained report: the summary, and three inline
// SVG charts (throughput over time, latency over time, latency by
// percentile). No scripts, no external files: it opens anywhere and can
// be attached to an issue.
func (res *Result) WriteHTML(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`<!doctype html>
<html><head><meta charset="utf-8"><title>`)
	b.WriteString(html.EscapeString(res.Title()))
	b.WriteString(`</title>
<style>
body{font:14px/1.4 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;max-width:1100px;margin:24px auto;padding:0 16px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 6px}
.sub{color:#555;margin-bottom:16px}
table{border-collapse:collapse;margin:8px 0} th,td{padding:4px 10px;text-align:right;border-bottom:1px solid #ddd}
th:first-child,td:first-child{text-align:left} th{background:#f4f4f4;font-weight:600}
pre{background:#f7f7f7;padding:8px;overflow-x:auto}
svg{display:block;margin:4px 0 8px}
.note{color:#666;font-size:12px}
</style></head><body>
`)
	fmt.Fprintf(&b, "<h1>sluice bench %s</h1>\n<div class=sub>%s<br>started %s, ran %.1f s</div>\n",
		res.Mode, html.EscapeString(res.setup()), res.Start.Format("2006-01-02 15:04:05 MST"), res.Elapsed.Seconds())

	b.WriteString("<table><tr><th></th><th>records</th><th>errors</th><th>records/s</th><th>MiB/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n")
	row := func(name string, s *Side) {
		l := s.Latency
		lat := func(d time.Duration) string {
			if l.Count == 0 {
				return "-"
			}
			return fmtDur(d)
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%d</td><td>%.0f</td><td>%.2f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			name, s.Records, s.Errors, s.RecordsPS, s.MiBPS, lat(l.P50), lat(l.P90), lat(l.P99), lat(l.P999), lat(l.Max))
	}
	if res.Produce != nil {
		row("produce (call → ack)", res.Produce)
	}
	if res.Consume != nil {
		row("consume (end to end)", res.Consume)
	}
	b.WriteString("</table>\n")
	if a := res.Agent; a != nil {
		fmt.Fprintf(&b, "<p>Agent (%s): <b>%.2f CPU seconds</b> and <b>%.1f object store requests</b> per GiB %s.</p>\n",
			html.EscapeString(a.URL), a.CPUPerGiB, a.ObjstoreRequestsPerGiB, a.Basis)
	}

	// Throughput over time.
	var prodT, consT [][2]float64
	for _, iv := range res.Intervals {
		if iv.Len <= 0 {
			continue
		}
		mid := iv.End - iv.Len/2
		if res.Produce != nil {
			prodT = append(prodT, [2]float64{mid, float64(iv.ProducedBytes) / (1 << 20) / iv.Len})
		}
		if res.Consume != nil {
			consT = append(consT, [2]float64{mid, float64(iv.ConsumedBytes) / (1 << 20) / iv.Len})
		}
	}
	b.WriteString("<h2>Throughput over time</h2>\n")
	tc := chart{xLabel: "seconds since start", yLabel: "MiB/s", xFrom0: true}
	if prodT != nil {
		tc.series = append(tc.series, series{name: "produced (acked)", color: colProduce, pts: prodT})
	}
	if consT != nil {
		tc.series = append(tc.series, series{name: "consumed", color: colE2E, dash: true, pts: consT})
	}
	b.WriteString(tc.svg())

	// Latency over time: p50 and p99 per second; seconds with no samples
	// are left out rather than drawn as zero.
	b.WriteString("<h2>Latency over time</h2>\n")
	lc := chart{xLabel: "seconds since start", yLabel: "ms", xFrom0: true}
	add := func(name, color string, dash bool, get func(Interval) (float64, bool)) {
		var pts [][2]float64
		for _, iv := range res.Intervals {
			if v, ok := get(iv); ok {
				pts = append(pts, [2]float64{iv.End - iv.Len/2, v})
			}
		}
		if len(pts) > 0 {
			lc.series = append(lc.series, series{name: name, color: color, dash: dash, pts: pts})
		}
	}
	if res.Produce != nil {
		add("produce p99", colProduce, false, func(iv Interval) (float64, bool) { return ms(iv.ProduceP99), iv.ProduceMax > 0 })
		add("produce p50", colProduce, true, func(iv Interval) (float64, bool) { return ms(iv.ProduceP50), iv.ProduceMax > 0 })
	}
	if res.Consume != nil {
		add("e2e p99", colE2E, false, func(iv Interval) (float64, bool) { return ms(iv.E2EP99), iv.E2EMax > 0 })
		add("e2e p50", colE2E, true, func(iv Interval) (float64, bool) { return ms(iv.E2EP50), iv.E2EMax > 0 })
	}
	b.WriteString(lc.svg())

	// Latency by percentile, on a log scale of 1/(1-q).
	b.WriteString("<h2>Latency by percentile</h2>\n")
	pc := chart{xLabel: "percentile", yLabel: "ms", percentileX: true}
	dist := func(name, color string, d []PercentilePoint, count uint64) {
		if len(d) == 0 {
			return
		}
		top := math.Log10(float64(count))
		var pts [][2]float64
		for _, p := range d {
			x := top
			if p.Quantile < 1 {
				x = min(-math.Log10(1-p.Quantile), top)
			}
			pts = append(pts, [2]float64{x, ms(p.Value)})
		}
		pc.series = append(pc.series, series{name: name, color: color, pts: pts, dots: true})
	}
	if res.Produce != nil {
		dist("produce", colProduce, res.ProduceDist, res.Produce.Latency.Count)
	}
	if res.Consume != nil {
		dist("end to end", colE2E, res.E2EDist, res.Consume.Latency.Count)
	}
	b.WriteString(pc.svg())
	b.WriteString("<p class=note>The last point of each curve is the maximum. Percentiles come from log-linear histograms with under 0.4% relative error.</p>\n")

	fmt.Fprintf(&b, "<h2>Configuration</h2>\n<pre>%s</pre>\n", html.EscapeString(configText(res)))
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func configText(res *Result) string {
	c := res.Config
	var b strings.Builder
	fmt.Fprintf(&b, "brokers       %s\ntopic         %s (%d partitions)\nrecord size   %d B\nrate          %d rec/s (0 = max)\nduration      %s\nproducers     %d\nconsumers     %d\nacks          %s\ncompression   %s\nlinger        %s\n",
		strings.Join(c.Brokers, ","), c.Topic, res.Partitions, c.RecordSize, c.Rate, c.Duration, c.Producers, c.Consumers, c.Acks, c.Compression, c.Linger)
	if c.Group != "" {
		fmt.Fprintf(&b, "group         %s\n", c.Group)
	}
	return b.String()
}

const (
	colProduce = "#1f77b4"
	colE2E     = "#d62728"
)

type series struct {
	name, color string
	dash, dots  bool
	pts         [][2]float64
}

// chart is a line chart drawn as SVG.
type chart struct {
	xLabel, yLabel string
	xFrom0         bool // start the x axis at 0 (time axes)
	percentileX    bool // x is log10(1/(1-q)); label ticks as percentiles
	series         []series
}

const (
	chW, chH                       = 1000, 320
	padL, padR, padT, padB float64 = 64, 16, 28, 44
)

func (c chart) svg() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica,Arial,sans-serif" font-size="12">`+"\n", chW, chH, chW, chH)
	if len(c.series) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#888">no data</text></svg>`+"\n", chW/2, chH/2)
		return b.String()
	}
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range c.series {
		for _, p := range s.pts {
			xmin, xmax, ymax = min(xmin, p[0]), max(xmax, p[0]), max(ymax, p[1])
		}
	}
	if c.xFrom0 {
		xmin = 0
	}
	if c.percentileX {
		xmin = math.Log10(2)
		xmax = max(xmax, 1)
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	yTicks := niceTicks(0, ymax, 5)
	ymax = yTicks[len(yTicks)-1]
	plotW, plotH := float64(chW)-padL-padR, float64(chH)-padT-padB
	X := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*plotW }
	Y := func(y float64) float64 { return padT + plotH - y/ymax*plotH }

	// Grid and axes.
	for _, t := range yTicks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`, padL, Y(t), padL+plotW, Y(t))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", padL-6, Y(t)+4, tickLabel(t))
	}
	type xt struct {
		x     float64
		label string
	}
	var xTicks []xt
	if c.percentileX {
		xTicks = append(xTicks, xt{math.Log10(2), "50%"})
		for k := 1; float64(k) <= xmax+1e-9; k++ {
			xTicks = append(xTicks, xt{float64(k), percentileLabel(k)})
		}
	} else {
		for _, t := range niceTicks(xmin, xmax, 10) {
			if t <= xmax+1e-9 {
				xTicks = append(xTicks, xt{t, tickLabel(t)})
			}
		}
	}
	for _, t := range xTicks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eeeeee"/>`, X(t.x), padT, X(t.x), padT+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">%s</text>`+"\n", X(t.x), padT+plotH+16, t.label)
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`, padL, padT+plotH, padL+plotW, padT+plotH)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`+"\n", padL, padT, padL, padT+plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">%s</text>`, padL+plotW/2, float64(chH)-8, html.EscapeString(c.xLabel))
	fmt.Fprintf(&b, `<text x="14" y="%.1f" text-anchor="middle" fill="#444" transform="rotate(-90 14 %.1f)">%s</text>`+"\n", padT+plotH/2, padT+plotH/2, html.EscapeString(c.yLabel))

	// Lines.
	for _, s := range c.series {
		var pts []string
		for _, p := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", X(p[0]), Y(p[1])))
		}
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", s.color, dash, strings.Join(pts, " "))
		if s.dots || len(s.pts) == 1 {
			for _, p := range s.pts {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, X(p[0]), Y(p[1]), s.color)
			}
			b.WriteString("\n")
		}
	}

	// Legend, top left inside the plot.
	lx, ly := padL+12, padT-10
	for _, s := range c.series {
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`, lx, ly, lx+24, ly, s.color, dash)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#222">%s</text>`, lx+30, ly+4, html.EscapeString(s.name))
		lx += 42 + 7*float64(len(s.name))
	}
	b.WriteString("\n</svg>\n")
	return b.String()
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for t := math.Floor(lo/step) * step; t < hi+step-1e-9*step; t += step {
		ticks = append(ticks, math.Round(t/step)*step)
	}
	return ticks
}

func tickLabel(v float64) string {
	switch {
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
	}
}

// percentileLabel is the percentile at log10(1/(1-q)) = k: 90%, 99%,
// 99.9%, ...
func percentileLabel(k int) string {
	switch k {
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", k-2) + "%"
}
