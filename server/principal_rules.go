package server

// Principals from client certificates, with Kafka's
// ssl.principal.mapping.rules (KIP-371; flag
// --ssl-principal-mapping-rules). The subject of the client's certificate
// is rendered as Kafka renders it (Java's X500Principal.getName(), RFC
// 2253: most specific RDN first, "CN=alice,OU=eng,O=org"), then the rules
// are tried in order; the first that matches names the principal
// User:<name>. No rule matching closes the connection, as Kafka fails
// the authentication.
//
// Rules are comma-separated, each either DEFAULT (the whole DN) or
//
//	RULE:pattern/replacement/[L|U]
//
// where pattern must match the whole DN, replacement may refer to its
// groups as $1, $2, ..., a '/' inside pattern or replacement is written
// '\/', and L or U lower- or upper-cases the result. Commas inside a
// pattern are the pattern's. Patterns are Go regular expressions (RE2):
// Java's syntax less lookaround and backreferences, which RE2 refuses
// at start with the flag named. As in Kafka, a backslash in the
// replacement is literal.

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// principalMapper holds parsed mapping rules.
type principalMapper struct {
	rules []mappingRule
}

type mappingRule struct {
	isDefault bool
	whole     *regexp.Regexp // the pattern anchored at both ends: does it apply?
	re        *regexp.Regexp // the pattern as written, for the replacement
	repl      string         // in Go's Expand syntax
	lower     bool
	upper     bool
}

// errNoMappingRule: no rule matched a certificate's DN.
var errNoMappingRule = errors.New("no --ssl-principal-mapping-rules rule matches")

// parsePrincipalRules parses a rules string; empty means DEFAULT.
func parsePrincipalRules(s string) (*principalMapper, error) {
	m := &principalMapper{}
	if strings.TrimSpace(s) == "" {
		m.rules = []mappingRule{{isDefault: true}}
		return m, nil
	}
	i := 0
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
			i++
		}
	}
	// field reads up to an unescaped '/', which it consumes.
	field := func() (string, bool) {
		start := i
		for i < len(s) {
			switch s[i] {
			case '\\':
				i += 2
				continue
			case '/':
				f := s[start:i]
				i++
				return f, true
			}
			i++
		}
		return "", false
	}
	for {
		skipSpace()
		if i == len(s) {
			break
		}
		start := i
		var r mappingRule
		switch {
		case strings.HasPrefix(s[i:], "DEFAULT"):
			i += len("DEFAULT")
			r.isDefault = true
		case strings.HasPrefix(s[i:], "RULE:"):
			i += len("RULE:")
			pat, ok := field()
			if !ok {
				return nil, fmt.Errorf("--ssl-principal-mapping-rules: rule %q: want RULE:pattern/replacement/[L|U]", s[start:])
			}
			repl, ok := field()
			if !ok {
				return nil, fmt.Errorf("--ssl-principal-mapping-rules: rule %q: want RULE:pattern/replacement/[L|U]", s[start:])
			}
			if i < len(s) && (s[i] == 'L' || s[i] == 'U') {
				r.lower, r.upper = s[i] == 'L', s[i] == 'U'
				i++
			}
			var err error
			if r.whole, err = regexp.Compile(`^(?:` + pat + `)$`); err != nil {
				return nil, fmt.Errorf("--ssl-principal-mapping-rules: pattern %q: %w", pat, err)
			}
			r.re = regexp.MustCompile(pat)
			r.repl = javaReplacement(repl)
		default:
			return nil, fmt.Errorf("--ssl-principal-mapping-rules: invalid rule at %q: want DEFAULT or RULE:pattern/replacement/[L|U]", s[i:])
		}
		skipSpace()
		if i < len(s) {
			if s[i] != ',' {
				return nil, fmt.Errorf("--ssl-principal-mapping-rules: rule %q: unexpected %q after it", s[start:i], s[i:])
			}
			i++
		}
		m.rules = append(m.rules, r)
	}
	if len(m.rules) == 0 {
		m.rules = []mappingRule{{isDefault: true}}
	}
	return m, nil
}

// javaReplacement turns a Kafka replacement into Go's Expand syntax: $n is
// group n (Go would read "$1x" as a group named "1x"), any other '$' and
// every backslash are literal.
func javaReplacement(r string) string {
	var b strings.Builder
	for i := 0; i < len(r); i++ {
		c := r[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(r) && r[j] >= '0' && r[j] <= '9' {
			j++
		}
		if j == i+1 {
			b.WriteString("$$")
			continue
		}
		b.WriteString("${" + r[i+1:j] + "}")
		i = j - 1
	}
	return b.String()
}

// name maps a DN to a principal name.
func (m *principalMapper) name(dn string) (string, error) {
	for _, r := range m.rules {
		if r.isDefault {
			return dn, nil
		}
		if !r.whole.MatchString(dn) {
			continue
		}
		out := r.re.ReplaceAllString(dn, r.repl)
		switch {
		case r.lower:
			out = strings.ToLower(out)
		case r.upper:
			out = strings.ToUpper(out)
		}
		return out, nil
	}
	return "", errNoMappingRule
}

// certPrincipal is the principal of a verified client certificate.
func (m *principalMapper) certPrincipal(cert *x509.Certificate) (Principal, error) {
	dn, err := kafkaDN(cert.RawSubject)
	if err != nil {
		return Principal{}, err
	}
	name, err := m.name(dn)
	if err != nil {
		return Principal{}, fmt.Errorf("%w subject %q", err, dn)
	}
	return Principal{Type: "User", Name: name}, nil
}

// dnKeywords are the attribute names Java's RFC 2253 rendering uses; any
// other attribute is written as its OID and the hex of its DER value (as
// Go's pkix.Name.String would, though Go names a few more, such as
// SERIALNUMBER, that Java does not).
var dnKeywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

// kafkaDN renders a DER subject the way Kafka names it: RFC 2253 order (the
// last RDN of the sequence first), RDNs joined by ',', the attributes of a
// multi-valued RDN by '+'.
func kafkaDN(rawSubject []byte) (string, error) {
	var seq []rdnSET
	if rest, err := asn1.Unmarshal(rawSubject, &seq); err != nil || len(rest) > 0 {
		return "", fmt.Errorf("client certificate subject does not parse: %v", err)
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if i < len(seq)-1 {
			b.WriteByte(',')
		}
		for j, atv := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			oid := atv.Type.String()
			var str string
			kw, known := dnKeywords[oid]
			if known {
				if _, err := asn1.Unmarshal(atv.Value.FullBytes, &str); err != nil {
					known = false
				}
			}
			if !known {
				// The value's own encoding, as the certificate holds it.
				b.WriteString(oid + "=#" + hex.EncodeToString(atv.Value.FullBytes))
				continue
			}
			b.WriteString(kw + "=")
			writeDNValue(&b, str)
		}
	}
	return b.String(), nil
}

// rdnSET and rawATV parse a subject keeping each value's DER (pkix's
// types decode it to a Go value, losing its string type). encoding/asn1
// reads a type whose name ends in SET as a SET OF.
type rdnSET []rawATV

type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// writeDNValue escapes an attribute value as Java's RFC 2253 rendering
// does (sun.security.x509.AVA.toRFC2253String): a backslash before each of
// , = + < > # ; " \ wherever it stands, NUL as \00, and before every
// space (or CR) of a leading or trailing run.
func writeDNValue(b *strings.Builder, v string) {
	lead := 0
	for lead < len(v) && (v[lead] == ' ' || v[lead] == '\r') {
		lead++
	}
	trail := len(v) - 1
	for trail >= lead && (v[trail] == ' ' || v[trail] == '\r') {
		trail--
	}
	for i, c := range v {
		switch {
		case c == 0:
			b.WriteString(`\00`)
			continue
		case strings.ContainsRune(`,=+<>#;"\`, c), i < lead || i > trail:
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
}
