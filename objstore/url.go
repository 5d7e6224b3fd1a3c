package objstore

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Open opens the bucket a URL names, the value of the --bucket flag:
//
//	file:///var/lib/sluice/bucket   a local directory (Local); a bare path works too
//	mem://                          an in-memory store (Memory), for tests
//	s3://bucket/prefix?region=us-east-1&endpoint=http://127.0.0.1:9000&path_style=true
//
// An s3:// URL takes these query parameters, all optional: region,
// endpoint, path_style (true/false), multipart_threshold and part_size
// (bytes), part_concurrency, timeout (per request, a Go duration),
// max_attempts. Credentials never appear in the URL: they come from the
// AWS chain (environment, shared config, web identity, instance role).
// Open checks that an S3 bucket is reachable with HeadBucket.
//
// Errors name the --bucket flag and say what is wrong.
func Open(ctx context.Context, rawURL string) (Store, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("--bucket is empty: want file:///path, s3://bucket/prefix or mem://")
	}
	if !strings.Contains(rawURL, "://") {
		// A bare path, relative or absolute.
		return openLocal(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--bucket %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("--bucket %q: a file URL names a local path: file:///abs/path (three slashes), not host %q", rawURL, u.Host)
		}
		if u.Path == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("--bucket %q: want file:///abs/path with no query", rawURL)
		}
		return openLocal(u.Path)
	case "mem":
		if u.Host != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("--bucket %q: mem:// takes no name, path or query", rawURL)
		}
		return NewMemory(), nil
	case "s3":
		cfg, err := ParseS3URL(rawURL)
		if err != nil {
			return nil, err
		}
		s, err := NewS3(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("--bucket %q: %w", rawURL, err)
		}
		if err := s.Check(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("--bucket %q: %w (check the bucket name, region, endpoint and the AWS credentials of this process)", rawURL, err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("--bucket %q: unknown scheme %q: want file://, s3:// or mem://", rawURL, u.Scheme)
	}
}

func openLocal(path string) (Store, error) {
	l, err := NewLocal(path)
	if err != nil {
		return nil, fmt.Errorf("--bucket %q: %w", path, err)
	}
	return l, nil
}

// bucketName is S3's rule for new buckets (3 to 63 lowercase letters,
// digits, dots and hyphens); older buckets may break it, so it only
// catches typos like a scheme in the wrong place.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$`)

// ParseS3URL turns s3://bucket/prefix?params into an S3Config; see Open
// for the parameters. The prefix gets a trailing '/'.
func ParseS3URL(rawURL string) (S3Config, error) {
	var cfg S3Config
	u, err := url.Parse(rawURL)
	if err != nil {
		return cfg, fmt.Errorf("--bucket %q: %w", rawURL, err)
	}
	if u.Scheme != "s3" {
		return cfg, fmt.Errorf("--bucket %q: not an s3:// URL", rawURL)
	}
	if u.User != nil {
		return cfg, fmt.Errorf("--bucket: credentials do not go in the bucket URL; use the AWS chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, an instance role)")
	}
	if !bucketName.MatchString(u.Host) {
		return cfg, fmt.Errorf("--bucket %q: %q is not a valid S3 bucket name (3 to 63 lowercase letters, digits, '.' and '-')", rawURL, u.Host)
	}
	cfg.Bucket = u.Host
	cfg.Prefix = strings.Trim(u.Path, "/")
	if cfg.Prefix != "" {
		if strings.Contains(cfg.Prefix, "//") {
			return cfg, fmt.Errorf("--bucket %q: the key prefix %q has an empty segment", rawURL, cfg.Prefix)
		}
		cfg.Prefix += "/"
	}
	for name, vals := range u.Query() {
		if len(vals) != 1 {
			return cfg, fmt.Errorf("--bucket %q: parameter %s given %d times", rawURL, name, len(vals))
		}
		v := vals[0]
		bad := func(want string, err error) error {
			return fmt.Errorf("--bucket %q: %s=%q: want %s (%v)", rawURL, name, v, want, err)
		}
		switch name {
		case "region":
			cfg.Region = v
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return cfg, bad("an http:// or https:// URL", err)
			}
			cfg.Endpoint = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, bad("true or false", err)
			}
			cfg.PathStyle = b
		case "multipart_threshold", "part_size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return cfg, bad("a positive number of bytes", err)
			}
			if name == "part_size" {
				if n < 5<<20 {
					return cfg, bad("at least 5 MiB (5242880), S3's smallest part", nil)
				}
				cfg.PartSize = n
			} else {
				cfg.MultipartThreshold = n
			}
		case "part_concurrency", "max_attempts":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 1000 {
				return cfg, bad("a number from 1 to 1000", err)
			}
			if name == "max_attempts" {
				cfg.MaxAttempts = n
			} else {
				cfg.PartConcurrency = n
			}
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return cfg, bad("a positive duration such as 10s", err)
			}
			cfg.RequestTimeout = d
		default:
			return cfg, fmt.Errorf("--bucket %q: unknown parameter %q (known: region, endpoint, path_style, multipart_threshold, part_size, part_concurrency, timeout, max_attempts)", rawURL, name)
		}
	}
	return cfg, nil
}
