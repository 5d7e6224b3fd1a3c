package server

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"
)

// The rules and names of Kafka's SslPrincipalMapperTest, which documents
// ssl.principal.mapping.rules.
func TestPrincipalRulesKafkaExamples(t *testing.T) {
	m, err := parsePrincipalRules("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, " +
		"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, " +
		"RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, " +
		"RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, " +
		"DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	for dn, want := range map[string]string{
		"CN=Duke,OU=ServiceUsers,O=Org,C=US":        "duke",
		"CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US": "duke@sme",
		"cn=duke,ou=sme,dc=mycp,dc=com":             "DUKE@SME",
		"cN=duke,OU=JavaSoft,O=Sun Microsystems":    "DUKE",
		"OU=JavaSoft,O=Sun Microsystems,C=US":       "OU=JavaSoft,O=Sun Microsystems,C=US",
	} {
		if got, err := m.name(dn); err != nil || got != want {
			t.Errorf("name(%q) = %q, %v; want %q", dn, got, err, want)
		}
	}
}

// A comma inside a pattern belongs to the pattern, and an escaped comma in
// the DN survives (Kafka's testCommaWithWhitespace).
func TestPrincipalRulesCommaInPattern(t *testing.T) {
	m, err := parsePrincipalRules(`RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT`)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.name(`CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz`); err != nil || got != `Tkac\, Adam` {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestPrincipalRulesValidInvalid(t *testing.T) {
	for _, r := range []string{
		"DEFAULT",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
		"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
		"RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
		"RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
		"RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
		"RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
		"",
	} {
		if _, err := parsePrincipalRules(r); err != nil {
			t.Errorf("%q: %v", r, err)
		}
	}
	for _, r := range []string{
		"default",
		"DEFAUL",
		"DEFAULT/L",
		"DEFAULT/U",
		"RULE:CN=(.*?),OU=ServiceUsers.*/$1",
		"rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
		"RULE:^CN=(?=x)/$1/", // lookahead: RE2 refuses it at start
	} {
		if _, err := parsePrincipalRules(r); err == nil {
			t.Errorf("%q parsed; want an error", r)
		}
	}
}

func TestPrincipalRulesNoMatch(t *testing.T) {
	m, err := parsePrincipalRules("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.name("CN=x,OU=Other"); !errors.Is(err, errNoMappingRule) {
		t.Fatalf("got %v, want errNoMappingRule", err)
	}
	// $1 followed by letters is group 1 then the letters, as in Java.
	m, _ = parsePrincipalRules("RULE:^CN=([a-z]+),.*$/$1x$$/")
	if got, _ := m.name("CN=ab,O=z"); got != "abx$$" {
		t.Fatalf("got %q", got)
	}
}

// The DN is rendered as Java's X500Principal.getName() does: most specific
// RDN first, Java's keywords, others as OID=#hex, and Java's escapes
// (= and # anywhere, every leading and trailing space).
func TestKafkaDN(t *testing.T) {
	attr := func(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: oid, Value: v}
	}
	seq := pkix.RDNSequence{
		{attr(asn1.ObjectIdentifier{2, 5, 4, 6}, "US")},
		{attr(asn1.ObjectIdentifier{2, 5, 4, 10}, "Org, Inc.")},
		{attr(asn1.ObjectIdentifier{2, 5, 4, 11}, "eng"), attr(asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, "example")},
		{attr(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, "a@b")},
		{attr(asn1.ObjectIdentifier{2, 5, 4, 3}, "  alice#1=x ")},
	}
	raw, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kafkaDN(raw)
	want := `CN=\ \ alice\#1\=x\ ,1.2.840.113549.1.9.1=#0c03614062,OU=eng+DC=example,O=Org\, Inc.,C=US`
	if err != nil || got != want {
		t.Fatalf("kafkaDN = %q, %v\nwant      %q", got, err, want)
	}
	if _, err := kafkaDN([]byte{0x30, 0x03, 1}); err == nil {
		t.Fatal("a truncated subject rendered")
	}
}
