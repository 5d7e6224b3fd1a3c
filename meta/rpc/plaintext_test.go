package rpc

import (
	"crypto/tls"
	"strings"
	"testing"
)

// Issue 11, item 9: without TLS an agent sent its key, in every call, in
// plaintext to whatever --meta-addr named. Dial and DialAdmin now refuse
// plaintext to an address that is not loopback unless told (Insecure,
// --meta-insecure), and the error names both flags.
func TestPlaintextOnlyToLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9093", true},
		{"127.8.9.10:9093", true},
		{"[::1]:9093", true},
		{"::1", true},
		{"localhost:9093", true},
		{"LocalHost:9093", true},
		{":9093", true},
		{"unix:///run/sluice/meta.sock", true},
		{"[::ffff:127.0.0.1]:9093", true},
		{"dns:///127.0.0.1:9093", true},
		{"10.0.0.5:9093", false},
		{"192.0.2.1:9093", false},
		{"[2001:db8::1]:9093", false},
		{"meta.example.com:9093", false},
		{"localhost.example.com:9093", false},
		{"dns:///meta.internal:9093", false},
		{"0.0.0.0:9093", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			c, err := Dial(ClientConfig{Addrs: []string{"127.0.0.1:1", tc.addr}, Key: "sk_test"})
			a, aerr := DialAdmin(tc.addr, "token", nil, false)
			if tc.ok {
				if err != nil || aerr != nil {
					t.Fatalf("refused a loopback address: %v / %v", err, aerr)
				}
				c.Close()
				a.Close()
				return
			}
			for _, e := range []error{err, aerr} {
				if e == nil || !strings.Contains(e.Error(), "--meta-ca") || !strings.Contains(e.Error(), "--meta-insecure") ||
					!strings.Contains(e.Error(), tc.addr) {
					t.Fatalf("plaintext to %s: %v; want a refusal naming the address, --meta-ca and --meta-insecure", tc.addr, e)
				}
			}
			// Told so, or with TLS, it is allowed.
			for _, cfg := range []ClientConfig{
				{Addrs: []string{tc.addr}, Key: "sk_test", Insecure: true},
				{Addrs: []string{tc.addr}, Key: "sk_test", TLS: &tls.Config{MinVersion: tls.VersionTLS12}},
			} {
				c, err := Dial(cfg)
				if err != nil {
					t.Fatalf("Dial(insecure %v, tls %v): %v", cfg.Insecure, cfg.TLS != nil, err)
				}
				c.Close()
			}
			a, err = DialAdmin(tc.addr, "token", nil, true)
			if err != nil {
				t.Fatalf("DialAdmin(insecure): %v", err)
			}
			a.Close()
		})
	}
}
