package main

import (
	"archive/tar"
	"bufio"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildSluice builds the static binary the way `make image` does.
func buildSluice(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=imagetest", "-o", out, "./cmd/sluice")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sluice: %v\n%s", err, b)
	}
	return out
}

// caBundle is the host's CA bundle, or a stand-in when the machine has
// none (the test checks the file's place, not its contents).
func caBundle(t *testing.T) string {
	if _, err := os.Stat(caPath); err == nil {
		return caPath
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, []byte("# no CA bundle on the test machine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImage builds the image as `make image` does, writes it as an OCI
// layout and a tarball, opens both with go-containerregistry and checks
// what a runtime will see: entrypoint, user, ports, a layer holding only
// the binary and what it needs, and a binary that runs.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image runs linux binaries; the test runs the one it packs")
	}
	bin := buildSluice(t)
	dir := t.TempDir()
	oci := filepath.Join(dir, "oci")
	tb := filepath.Join(dir, "sluice.tar")
	if err := run([]string{"--binary", bin, "--ca-certs", caBundle(t), "--version", "imagetest", "--oci-layout", oci, "--tarball", tb, "--tag", "sluice:imagetest"}); err != nil {
		t.Fatal(err)
	}

	idx, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatalf("open OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("OCI layout holds %d manifests, want 1", len(im.Manifests))
	}
	if got := string(im.Manifests[0].MediaType); got != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest media type %q, want the OCI one", got)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	fromTar, err := tarball.ImageFromPath(tb, nil)
	if err != nil {
		t.Fatalf("open tarball: %v", err)
	}
	d1, _ := img.ConfigName()
	d2, _ := fromTar.ConfigName()
	if d1 != d2 {
		t.Errorf("OCI layout and tarball hold different configs: %s vs %s", d1, d2)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"/sluice"}) {
		t.Errorf("entrypoint %q, want [/sluice]", c.Entrypoint)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root, numeric for runAsNonRoot)", c.User)
	}
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	if want := []string{"8080/tcp", "8081/tcp", "9092/tcp", "9093/tcp", "9094/tcp"}; !slices.Equal(ports, want) {
		t.Errorf("exposed ports %v, want %v", ports, want)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if !cf.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %v, want the epoch (reproducible digests)", cf.Created.Time)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	extracted := filepath.Join(dir, "extracted-sluice")
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
		if h.Name == "sluice" {
			f, err := os.OpenFile(extracted, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	var names []string
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"data/", "etc/", "etc/group", "etc/passwd", "etc/ssl/", "etc/ssl/certs/", "etc/ssl/certs/ca-certificates.crt", "home/", "home/nonroot/", "sluice", "tmp/"}
	if !slices.Equal(names, want) {
		t.Errorf("layer holds %v\nwant only %v", names, want)
	}
	if h := entries["sluice"]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("/sluice is missing or not executable")
	}
	if h := entries["data/"]; h == nil || h.Uid != 65532 {
		t.Errorf("/data must belong to the non-root user (meta's embedded store lives there)")
	}

	// Static: no program interpreter, no shared libraries.
	ef, err := elf.Open(extracted)
	if err != nil {
		t.Fatalf("the packed binary is not ELF: %v", err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the packed binary asks for a dynamic loader: build it with CGO_ENABLED=0")
		}
	}
	if libs, _ := ef.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the packed binary links %v", libs)
	}
	ef.Close()

	out, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("sluice version from the image: %v\n%s", err, out)
	}
	// The version subcommand's exact format belongs to the CLI; the image
	// only promises the binary runs and carries the version it was built
	// with.
	if !strings.Contains(string(out), "imagetest") {
		t.Errorf("sluice version printed %q, want the version built in (imagetest)", out)
	}
}

// TestDockerfileMatchesBuilder reads the Dockerfile's final stage and
// holds it to the builder's spec, so the two ways of building describe
// one image.
func TestDockerfileMatchesBuilder(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]string // instructions per stage, continuation lines joined
	var line string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if strings.HasSuffix(s, "\\") {
			line += strings.TrimSuffix(s, "\\") + " "
			continue
		}
		line += s
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %q before FROM", line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], line)
		line = ""
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a final one", len(stages))
	}
	build, final := strings.Join(stages[0], "\n"), stages[len(stages)-1]
	if !strings.Contains(build, "CGO_ENABLED=0") {
		t.Errorf("the build stage must build with CGO_ENABLED=0 (static binary)")
	}
	got := map[string][]string{}
	var copied []string
	for _, ins := range final {
		op, arg, _ := strings.Cut(ins, " ")
		op = strings.ToUpper(op)
		got[op] = append(got[op], arg)
		if op == "COPY" {
			fields := strings.Fields(arg)
			dst := fields[len(fields)-1]
			copied = append(copied, dst)
			// The builder's layer gives /data and /home/nonroot to the
			// user; Docker's COPY would give them to root.
			if (dst == "/data" || dst == "/home") && !slices.Contains(fields, "--chown=65532:65532") {
				t.Errorf("Dockerfile: COPY to %s without --chown=65532:65532: the builder gives it to the non-root user", dst)
			}
		}
	}
	if got["FROM"][0] != "scratch" {
		t.Errorf("final stage FROM %s, want scratch (nothing but what the layer holds)", got["FROM"][0])
	}
	jsonArray := func(op string) []string {
		if len(got[op]) != 1 {
			t.Fatalf("Dockerfile: %d %s instructions in the final stage, want 1", len(got[op]), op)
		}
		var v []string
		if err := json.Unmarshal([]byte(got[op][0]), &v); err != nil {
			t.Fatalf("Dockerfile %s %s: want the exec (JSON) form: %v", op, got[op][0], err)
		}
		return v
	}
	if v := jsonArray("ENTRYPOINT"); !slices.Equal(v, []string{binaryPath}) {
		t.Errorf("ENTRYPOINT %q, builder %q", v, binaryPath)
	}
	if v := jsonArray("CMD"); !slices.Equal(v, defaultCmd) {
		t.Errorf("CMD %q, builder %q", v, defaultCmd)
	}
	if !slices.Equal(got["USER"], []string{user}) {
		t.Errorf("USER %q, builder %q", got["USER"], user)
	}
	if !slices.Equal(got["WORKDIR"], []string{dataDir}) {
		t.Errorf("WORKDIR %q, builder %q", got["WORKDIR"], dataDir)
	}
	if !slices.Equal(got["ENV"], []string{"HOME=" + homeDir}) {
		t.Errorf("ENV %q, builder HOME=%s", got["ENV"], homeDir)
	}
	var ports []string
	for _, e := range got["EXPOSE"] {
		ports = append(ports, strings.Fields(e)...)
	}
	slices.Sort(ports)
	if !slices.Equal(ports, exposedPorts) {
		t.Errorf("EXPOSE %v, builder %v", ports, exposedPorts)
	}
	slices.Sort(copied)
	if want := []string{"/data", "/etc/", caPath, "/home", binaryPath, "/tmp"}; !slices.Equal(copied, want) {
		t.Errorf("the final stage copies to %v, the builder's layer holds %v", copied, want)
	}
}
