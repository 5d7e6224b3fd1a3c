package ctl

// Record format strings, as kcat's -f: %t topic, %p partition, %o offset,
// %k key, %K key length, %s value, %S value length, %T timestamp (Unix
// milliseconds), %h headers (k=v, comma-separated), %% a percent sign;
// escapes \n \r \t \\ \0. A format is compiled once, then appends each
// record without allocating per verb.

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

type recordFormat []fmtPart

// fmtPart is literal text (verb 0) or one verb.
type fmtPart struct {
	lit  string
	verb byte
}

func parseRecordFormat(s string) (recordFormat, error) {
	var out recordFormat
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			out = append(out, fmtPart{lit: string(lit)})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("-f %q: a lone %% at the end; write %%%% for a percent sign", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit = append(lit, '%')
			case 't', 'p', 'o', 'k', 'K', 's', 'S', 'T', 'h':
				flush()
				out = append(out, fmtPart{verb: v})
			default:
				return nil, fmt.Errorf("-f %q: unknown verb %%%c; use %%t %%p %%o %%k %%K %%s %%S %%T %%h or %%%%", s, v)
			}
		case '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("-f %q: a lone \\ at the end; write \\\\ for a backslash", s)
			}
			i++
			switch v := s[i]; v {
			case 'n':
				lit = append(lit, '\n')
			case 'r':
				lit = append(lit, '\r')
			case 't':
				lit = append(lit, '\t')
			case '0':
				lit = append(lit, 0)
			case '\\':
				lit = append(lit, '\\')
			default:
				return nil, fmt.Errorf("-f %q: unknown escape \\%c; use \\n \\r \\t \\0 or \\\\", s, v)
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return out, nil
}

// append formats r onto dst.
func (f recordFormat) append(dst []byte, r *kgo.Record) []byte {
	for _, p := range f {
		switch p.verb {
		case 0:
			dst = append(dst, p.lit...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'k':
			dst = append(dst, r.Key...)
		case 'K':
			if r.Key == nil {
				dst = append(dst, "-1"...)
			} else {
				dst = strconv.AppendInt(dst, int64(len(r.Key)), 10)
			}
		case 's':
			dst = append(dst, r.Value...)
		case 'S':
			if r.Value == nil {
				dst = append(dst, "-1"...)
			} else {
				dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
			}
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}
