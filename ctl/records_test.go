package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduceConsume: records produced from stdin lines (key delimiter,
// headers, a fixed partition, JSON lines with timestamps) come back from
// consume byte for byte, in the kcat-style format and as JSON; -n, -o
// (beginning, end, N, -N, @T), -p and -e select what kcat's would.
func TestProduceConsume(t *testing.T) {
	c := newCLI(t)
	c.ok("", "topic", "create", "events", "--partitions", "2")

	// JSON lines: explicit timestamps, so %T and @T are deterministic.
	var in strings.Builder
	for i := range 6 {
		fmt.Fprintf(&in, `{"key":"k%d","value":"v%d","timestamp":%d,"headers":[{"key":"n","value":"%d"}]}`+"\n", i, i, 1_000_000+i*1000, i)
	}
	golden(t, "produce_json_p0", c.ok(in.String(), "produce", "events", "-p", "0", "--format", "json"))
	golden(t, "produce_keyed_p1", c.ok("a:1\nb:2\nc:3\nnokey\n", "produce", "events", "-p", "1", "-K", ":", "-H", "src=test", "-H", "v=2"))

	format := `%t %p %o %T key=%k(%K) value=%s(%S) [%h]\n`
	// Records produced from plain lines carry the time of produce.
	now := regexp.MustCompile(`\b1[7-9][0-9]{11}\b`)
	golden(t, "consume_format", now.ReplaceAllString(sortLines(c.ok("", "consume", "events", "-e", "-f", format)), "NOW"))

	// JSON lines parse back to exactly what was produced.
	out := c.ok("", "consume", "events", "-p", "0", "-e", "--format", "json")
	var got []recordJSON
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r recordJSON
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("consume --format json line %q: %v", sc.Text(), err)
		}
		got = append(got, r)
	}
	if len(got) != 6 {
		t.Fatalf("consume -p 0 -e: %d records, want 6:\n%s", len(got), out)
	}
	for i, r := range got {
		if *r.Offset != int64(i) || *r.Partition != 0 || *r.Key != fmt.Sprintf("k%d", i) || *r.Value != fmt.Sprintf("v%d", i) ||
			*r.Timestamp != int64(1_000_000+i*1000) || len(r.Headers) != 1 || r.Headers[0].Value != fmt.Sprint(i) {
			t.Errorf("record %d read back as %+v", i, r)
		}
	}

	offsets := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(strings.ReplaceAll(c.ok("", append([]string{"consume", "events", "-p", "0", "-f", `%o `}, args...)...), "  ", " "))
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-e"}, "0 1 2 3 4 5"},
		{[]string{"-n", "2"}, "0 1"},
		{[]string{"-o", "4", "-e"}, "4 5"},
		{[]string{"-o", "-2", "-e"}, "4 5"},
		{[]string{"-o", "-99", "-e"}, "0 1 2 3 4 5"},
		{[]string{"-o", "@1003000", "-e"}, "3 4 5"},
		{[]string{"-o", "@" + time.UnixMilli(1_002_500).UTC().Format(time.RFC3339Nano), "-e"}, "3 4 5"},
		{[]string{"-o", "end", "-e"}, ""},
	} {
		if got := offsets(tc.args...); got != tc.want {
			t.Errorf("consume -p 0 %s: offsets %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}

	// A record without the delimiter is a value without a key (kcat -K).
	out = c.ok("", "consume", "events", "-p", "1", "-o", "3", "-n", "1", "--format", "json")
	var last recordJSON
	if err := json.Unmarshal([]byte(out), &last); err != nil || last.Key != nil || *last.Value != "nokey" {
		t.Errorf("line without -K delimiter: %s (%v), want a null key and value nokey", out, err)
	}

	c.fails([]string{"-f", "unknown verb %x"}, "", "consume", "events", "-f", "%x")
	c.fails([]string{"-o must be beginning, end"}, "", "consume", "events", "-o", "soon")
	c.fails([]string{"-p and -e read partitions directly"}, "", "consume", "events", "--group", "g", "-e")
	c.fails([]string{"-o with --group must be beginning or end", "sluice group reset-offsets"}, "", "consume", "events", "--group", "g", "-o", "5")
	c.fails([]string{`topic "events" has no partition 7`}, "", "consume", "events", "-p", "7", "-e")
	c.fails([]string{`topic "nope" does not exist (UNKNOWN_TOPIC_OR_PARTITION)`}, "", "consume", "nope", "--group", "g", "-n", "1")
	c.fails([]string{`topic "events" has no partition 9`, "-p"}, "x\n", "produce", "events", "-p", "9")
	c.fails([]string{"stdin line 1 is longer than --max-line-bytes 4"}, "12345\n", "produce", "events", "--max-line-bytes", "4")
	c.fails([]string{"stdin line 2", "not a JSON record object"}, "{\"value\":\"a\"}\nnot json\n", "produce", "events", "--format", "json")
}

// TestProduceCodecs: every --compression codec and acks level produces
// records a plain kgo consumer reads back.
func TestProduceCodecs(t *testing.T) {
	c := newCLI(t)
	c.ok("", "topic", "create", "codecs", "--partitions", "1")
	var want []string
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		for _, acks := range []string{"all", "1"} {
			v := strings.Repeat(codec+"-"+acks+" ", 20)
			want = append(want, v)
			c.ok(v+"\n", "produce", "codecs", "--compression", codec, "--acks", acks)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumeTopics("codecs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < len(want) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("kgo read %q, want %q", got, want)
	}
}

func TestRecordFormat(t *testing.T) {
	r := &kgo.Record{Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("hello"),
		Timestamp: time.UnixMilli(1700000000123), Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}}
	for _, tc := range []struct{ format, want string }{
		{`%s\n`, "hello\n"},
		{`%t/%p@%o %k=%s %T %h`, "t/3@42 k=hello 1700000000123 a=1,b=2"},
		{`%K %S 100%% \t\\\r\0`, "1 5 100% \t\\\r\x00"},
	} {
		f, err := parseRecordFormat(tc.format)
		if err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if got := string(f.append(nil, r)); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.format, got, tc.want)
		}
	}
	null := &kgo.Record{}
	f, _ := parseRecordFormat(`%K %S`)
	if got := string(f.append(nil, null)); got != "-1 -1" {
		t.Errorf("null key and value lengths: %q, want -1 -1 (kcat's)", got)
	}
	for _, bad := range []string{`%`, `%q`, `\`, `\x`} {
		if _, err := parseRecordFormat(bad); err == nil {
			t.Errorf("%q parsed, want an error", bad)
		}
	}
}

func sortLines(s string) string {
	lines := strings.SplitAfter(s, "\n")
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// FuzzRecordFormat: any -f string either fails to parse or formats any
// record without panicking.
func FuzzRecordFormat(f *testing.F) {
	for _, s := range []string{`%s\n`, `%t %p %o %k %K %s %S %T %h %%`, `\\\t\r\0`, `%`, `\`} {
		f.Add(s, "key", "value")
	}
	f.Fuzz(func(t *testing.T, format, key, value string) {
		rf, err := parseRecordFormat(format)
		if err != nil {
			return
		}
		r := &kgo.Record{Topic: "t", Key: []byte(key), Value: []byte(value), Headers: []kgo.RecordHeader{{Key: key, Value: []byte(value)}}}
		_ = rf.append(nil, r)
		_ = rf.append(nil, &kgo.Record{})
	})
}
