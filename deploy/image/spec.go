// Command image builds Sluice's container image without a Docker daemon:
// one layer holding the static binary and the few files it needs, a
// config naming the entrypoint, user and ports, written as an OCI layout
// (and, optionally, a tarball `docker load` and `podman load` accept).
// `make image` runs it; the Dockerfile at the repository root describes
// the same image for those who build with Docker, and image_test.go
// holds the two to the same spec.
package main

// The image's spec, shared by the builder and its test (which also checks
// the Dockerfile against it).
const (
	// binaryPath is where the binary sits: the root, as distroless and ko
	// images do, so the entrypoint needs no PATH (there is no shell).
	binaryPath = "/sluice"
	// user is distroless' "nonroot" (65532): not root, and a number so
	// Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
	user    = "65532:65532"
	homeDir = "/home/nonroot"
	// caPath is where Go's crypto/x509 looks first on Linux: the S3
	// client verifies the bucket's TLS certificate against it.
	caPath = "/etc/ssl/certs/ca-certificates.crt"
	// dataDir is a directory the non-root user owns, for `sluice meta
	// --store /data/meta` and the playground; the chart mounts a volume
	// over it.
	dataDir = "/data"
)

// exposedPorts are the defaults of the listeners: Kafka (agent), the
// agent's HTTP (/metrics, /healthz), meta's gRPC and meta's HTTP. The
// zone cache's peer port has no default (it picks one); the chart sets
// 9094.
var exposedPorts = []string{"8080/tcp", "8081/tcp", "9092/tcp", "9093/tcp", "9094/tcp"}

// defaultCmd runs when no arguments are given: the usage, which names
// the subcommands. There is no sensible default role: agent and meta need
// flags (a bucket, an agent key), and the playground is for laptops.
var defaultCmd = []string{"--help"}

// passwd and group name the non-root user, so tools that map uid to name
// (and Go's os/user) work; root is listed because some tools expect it.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group  = "root:x:0:\nnonroot:x:65532:\n"
)
