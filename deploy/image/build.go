package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// buildConfig says what goes into the image.
type buildConfig struct {
	Binary  string // the static sluice binary (CGO_ENABLED=0)
	CACerts string // a PEM bundle of CA certificates
	Arch    string // GOARCH of Binary
	Version string // the org.opencontainers.image.version label
}

// epoch is every timestamp in the image (files, config): the same binary
// gives the same image digest, build after build.
var epoch = time.Unix(0, 0).UTC()

// buildImage assembles the image in memory: one layer, the config.
func buildImage(c buildConfig) (v1.Image, error) {
	bin, err := os.ReadFile(c.Binary)
	if err != nil {
		return nil, fmt.Errorf("--binary: %w", err)
	}
	ca, err := os.ReadFile(c.CACerts)
	if err != nil {
		return nil, fmt.Errorf("--ca-certs: %w (Debian: apt-get install ca-certificates)", err)
	}
	layerTar, err := layerBytes(bin, ca)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "sluice.dev/deploy/image", Comment: "the static sluice binary, CA certificates, the non-root user"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", c.Arch
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = []string{binaryPath}
	cf.Config.Cmd = defaultCmd
	cf.Config.User = user
	cf.Config.WorkingDir = dataDir
	cf.Config.Env = []string{"HOME=" + homeDir}
	cf.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range exposedPorts {
		cf.Config.ExposedPorts[p] = struct{}{}
	}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   "sluice",
		"org.opencontainers.image.version": c.Version,
		"org.opencontainers.image.source":  "https://sluice.dev",
	}
	return mutate.ConfigFile(img, cf)
}

// layerBytes is the one layer: directories first, then files, each with
// the owner and mode it needs. Nothing else: no shell, no package
// manager, no libc (the binary is static).
func layerBytes(bin, ca []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, uid int, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid, ModTime: epoch, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc/", 0, 0o755) },
		func() error { return dir("etc/ssl/", 0, 0o755) },
		func() error { return dir("etc/ssl/certs/", 0, 0o755) },
		func() error { return dir("home/", 0, 0o755) },
		func() error { return dir("home/nonroot/", 65532, 0o700) },
		func() error { return dir("data/", 65532, 0o700) },
		func() error { return dir("tmp/", 0, 0o1777) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return file(caPath[1:], 0o644, ca) },
		func() error { return file(binaryPath[1:], 0o755, bin) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
