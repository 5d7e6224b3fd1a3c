package server

// Principal is who a connection acts as, in Kafka's form Type:Name
// (docs/security.md): from SASL, from the client certificate under the
// principal mapping rules, or User:ANONYMOUS when neither applies.
type Principal struct {
	Type string
	Name string
}

// Anonymous is the principal of a connection that has not authenticated.
var Anonymous = Principal{Type: "User", Name: "ANONYMOUS"}

func (p Principal) String() string { return p.Type + ":" + p.Name }

// Principal returns who the connection acts as.
func (c *conn) Principal() Principal {
	if p := c.principal.Load(); p != nil {
		return *p
	}
	return Anonymous
}

// setPrincipal records who the connection acts as from now on.
func (c *conn) setPrincipal(p Principal) { c.principal.Store(&p) }
