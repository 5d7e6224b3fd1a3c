package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	bin := fs.String("binary", "", "the sluice binary to package; build it static: CGO_ENABLED=0 GOOS=linux go build ./cmd/sluice (required)")
	ca := fs.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates to ship (the S3 client verifies the bucket's certificate against it)")
	arch := fs.String("arch", runtime.GOARCH, "GOARCH the binary was built for")
	ver := fs.String("version", "dev", "version label of the image")
	out := fs.String("oci-layout", "", "write the image as an OCI layout into this directory (replaced)")
	tb := fs.String("tarball", "", "also write a tarball that 'docker load' and 'podman load' accept")
	tag := fs.String("tag", "sluice:dev", "the tag the tarball carries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" {
		return errors.New("--binary is required: the static sluice binary to package")
	}
	if *out == "" && *tb == "" {
		return errors.New("nothing to write: give --oci-layout DIR and/or --tarball FILE")
	}
	img, err := buildImage(buildConfig{Binary: *bin, CACerts: *ca, Arch: *arch, Version: *ver})
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.RemoveAll(*out); err != nil {
			return fmt.Errorf("--oci-layout: %w", err)
		}
		p, err := layout.Write(*out, empty.Index)
		if err != nil {
			return fmt.Errorf("--oci-layout: %w", err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": *tag})); err != nil {
			return fmt.Errorf("--oci-layout: %w", err)
		}
	}
	if *tb != "" {
		ref, err := name.NewTag(*tag)
		if err != nil {
			return fmt.Errorf("--tag: %w", err)
		}
		if err := tarball.WriteToFile(*tb, ref, img); err != nil {
			return fmt.Errorf("--tarball: %w", err)
		}
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("image: %s %s\n", *tag, d)
	return nil
}
