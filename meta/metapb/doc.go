// Package metapb is the control plane's network API, generated from
// meta.proto by `make generate`: service Meta (meta.Client over gRPC) and
// service Admin (agent keys). Only meta/rpc should import it; everything
// else speaks meta.Client. Read the top of meta.proto before adding a
// field: no field may be able to carry record bytes.
package metapb
