package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// Charts are inline SVG drawn here, on the server: no chart library, no
// script, and a page that shows its charts even with JavaScript off.

type point struct {
	At time.Time
	V  float64
}

type series struct {
	Name   string
	Points []point
}

func pick(ss []sample, name string, f func(sample) float64) series {
	s := series{Name: name, Points: make([]point, len(ss))}
	for i, x := range ss {
		s.Points[i] = point{x.At, f(x)}
	}
	return s
}

// palette: distinguishable on white and for the common colour blindness
// (Okabe and Ito).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"}

const (
	chartW, chartH = 640, 180
	padL, padR     = 64, 12
	padT, padB     = 12, 24
)

// chart draws the series over the window ending at now. The svg element
// carries data-points (the number of points drawn) and data-max (the
// largest value) so tests and scripts can tell a chart with data from an
// empty one.
func chart(id, unit string, window time.Duration, now time.Time, ss []series, format func(float64) string) template.HTML {
	var b strings.Builder
	top := 0.0
	points := 0
	for _, s := range ss {
		for _, p := range s.Points {
			top = math.Max(top, p.V)
			points++
		}
	}
	peak := top
	if top <= 0 {
		top = 1
	}
	top = niceCeil(top)
	// The x axis spans the window, or less while the ring holds less
	// (after a start or a failover), so a young history is readable.
	start := now.Add(-window)
	if first, ok := oldest(ss); ok && first.After(start) {
		start = first
	}
	span := now.Sub(start)
	if span <= 0 {
		span = time.Second
		start = now.Add(-span)
	}
	x := func(t time.Time) float64 {
		return padL + float64(t.Sub(start))/float64(span)*(chartW-padL-padR)
	}
	y := func(v float64) float64 { return padT + (1-v/top)*(chartH-padT-padB) }
	fmt.Fprintf(&b, `<svg class="chart" id="chart-%s" data-points="%d" data-max="%g" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s over the last %s">`,
		template.HTMLEscapeString(id), points, peak, chartW, chartH, chartW, chartH, template.HTMLEscapeString(id), window)
	// Grid and axes: four horizontal lines labelled with their value.
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, padL, chartW-padR, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11" fill="#555">%s</text>`, padL-6, y(v)+4, template.HTMLEscapeString(format(v)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#555">-%s</text>`, padL, chartH-6, span.Round(time.Second))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-size="11" fill="#555">now</text>`, chartW-padR, chartH-6)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11" fill="#555">%s</text>`, (chartW+padL)/2, chartH-6, template.HTMLEscapeString(unit))
	for i, s := range ss {
		color := palette[i%len(palette)]
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.At), y(p.V)))
		}
		name := template.HTMLEscapeString(s.Name)
		switch len(pts) {
		case 0:
		case 1:
			fmt.Fprintf(&b, `<circle class="series" data-name="%s" cx="%s" cy="%s" r="3" fill="%s"><title>%s</title></circle>`,
				name, strings.Split(pts[0], ",")[0], strings.Split(pts[0], ",")[1], color, name)
		default:
			fmt.Fprintf(&b, `<polyline class="series" data-name="%s" fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`,
				name, color, strings.Join(pts, " "), name)
		}
	}
	if points == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="13" fill="#888">collecting samples…</text>`, (chartW+padL)/2, chartH/2)
	}
	b.WriteString(`</svg>`)
	if len(ss) > 1 {
		b.WriteString(`<ul class="legend">`)
		for i, s := range ss {
			fmt.Fprintf(&b, `<li><svg width="12" height="12"><rect width="12" height="12" fill="%s"/></svg> %s</li>`, palette[i%len(palette)], template.HTMLEscapeString(s.Name))
		}
		b.WriteString(`</ul>`)
	}
	return template.HTML(b.String()) //nolint:gosec // every name above is escaped
}

func oldest(ss []series) (time.Time, bool) {
	var t time.Time
	for _, s := range ss {
		if len(s.Points) > 0 && (t.IsZero() || s.Points[0].At.Before(t)) {
			t = s.Points[0].At
		}
	}
	return t, !t.IsZero()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so the axis
// labels read well.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		if v < 10 && v != math.Trunc(v) {
			return fmt.Sprintf("%.2f B", v)
		}
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// fmtDollars shows cents, and six decimals below a cent so that a
// playground's few requests do not read as nothing.
func fmtDollars(v float64) string {
	if v != 0 && math.Abs(v) < 0.01 {
		return fmt.Sprintf("$%.6f", v)
	}
	return fmt.Sprintf("$%.2f", v)
}

func fmtBytesRate(v float64) string { return fmtBytes(v) + "/s" }

func fmtCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

var funcs = template.FuncMap{
	"bytes":   func(v int64) string { return fmtBytes(float64(v)) },
	"dollars": fmtDollars,
	"price":   func(v float64) string { return fmt.Sprintf("%g", v) },
	"time":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"dur": func(d time.Duration) string {
		if d < time.Second {
			return d.String()
		}
		return d.Round(time.Second).String()
	},
	"list": func(s ...string) []string { return s },
}
