package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Title is a one-line description of the run.
func (res *Result) Title() string {
	return fmt.Sprintf("sluice bench %s: %s", res.Mode, res.setup())
}

// setup describes the load: brokers, topic and client settings.
func (res *Result) setup() string {
	c := res.Config
	rate := "max rate"
	if c.Rate > 0 {
		rate = fmt.Sprintf("%d rec/s", c.Rate)
	}
	s := fmt.Sprintf("%s topic %s (%d partitions)", strings.Join(c.Brokers, ","), c.Topic, res.Partitions)
	if res.Mode != ModeConsume {
		s += fmt.Sprintf(", %d B records, %s, %d producer(s)", c.RecordSize, rate, c.Producers)
	}
	if res.Mode != ModeProduce {
		s += fmt.Sprintf(", %d consumer(s)", c.Consumers)
		if c.Group != "" {
			s += " in group " + c.Group
		}
	}
	if res.Mode != ModeConsume {
		s += fmt.Sprintf(", acks=%s, %s, linger %s", c.Acks, c.Compression, c.Linger)
	}
	return s + fmt.Sprintf(", %s", c.Duration)
}

// WriteSummary prints the human summary table.
func (res *Result) WriteSummary(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintln(&b, res.Title())
	fmt.Fprintln(&b)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\trecords\terrors\trecords/s\tMiB/s\tp50\tp90\tp99\tp99.9\tmax\t")
	row := func(name string, s *Side) {
		l := s.Latency
		lat := func(d time.Duration) string {
			if l.Count == 0 {
				return "-"
			}
			return fmtDur(d)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%s\t\n", name, s.Records, s.Errors, s.RecordsPS, s.MiBPS,
			lat(l.P50), lat(l.P90), lat(l.P99), lat(l.P999), lat(l.Max))
	}
	if res.Produce != nil {
		row("produce (ack)", res.Produce)
	}
	if res.Consume != nil {
		row("consume (e2e)", res.Consume)
	}
	tw.Flush()
	if res.Mode == ModeE2E && res.Consume.Records < res.Produce.Records {
		fmt.Fprintf(&b, "\nconsumers read %d fewer records than were acknowledged (waited %s for them)\n",
			res.Produce.Records-res.Consume.Records, res.Config.DrainTimeout)
	}
	if res.Consume != nil && res.Consume.Latency.Count == 0 && res.Mode == ModeConsume {
		fmt.Fprintln(&b, "\nno record produced during the run was consumed: end-to-end latency needs a concurrent `sluice bench produce`")
	}
	if res.Consume != nil && res.Consume.Latency.Count > 0 && res.Consume.Latency.Count < uint64(res.Consume.Records) {
		fmt.Fprintf(&b, "\ne2e latency covers the %d records produced during the run\n", res.Consume.Latency.Count)
	}
	for _, s := range []struct {
		name string
		side *Side
	}{{"produce", res.Produce}, {"consume", res.Consume}} {
		if s.side != nil && s.side.FirstError != "" {
			fmt.Fprintf(&b, "\nfirst %s error: %s\n", s.name, s.side.FirstError)
		}
	}
	if p := res.Produce; p != nil && p.Aborted > 0 {
		fmt.Fprintf(&b, "%d record(s) in flight when interrupted are not counted\n", p.Aborted)
	}
	if a := res.Agent; a != nil {
		fmt.Fprintf(&b, "\nagent (%s), per GiB %s (%.3f GiB):\n", a.URL, a.Basis, a.GiB)
		fmt.Fprintf(&b, "  CPU seconds        %8.2f  (%.2f s in all)\n", a.CPUPerGiB, a.CPUSeconds)
		var ops []string
		for _, op := range a.ops() {
			ops = append(ops, fmt.Sprintf("%s %.0f", op, a.ObjstoreRequests[op]))
		}
		fmt.Fprintf(&b, "  objstore requests  %8.1f  (%s)\n", a.ObjstoreRequestsPerGiB, strings.Join(ops, ", "))
		if len(a.Missing) > 0 {
			fmt.Fprintf(&b, "  not exposed by the endpoint: %s\n", strings.Join(a.Missing, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the result as one JSON line.
func (res *Result) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(res)
}

// ms is a duration in milliseconds, for charts.
func ms(d time.Duration) float64 { return float64(d) / 1e6 }
