package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"sluice.dev/internal/uninit"
)

// Defaults of S3Config. Each says why.
const (
	// DefaultMultipartThreshold: below it one PutObject is cheapest (one
	// request, one round trip). Segments seal at 8 MiB by default, so the
	// produce path stays on single PUTs; compaction output and raised
	// --max-segment-bytes go multipart, where parts in parallel beat one
	// long stream and a failed part is retried alone.
	DefaultMultipartThreshold = 16 << 20
	// DefaultPartSize is the SDK transfer manager's default; S3 refuses
	// parts below 5 MiB (except the last).
	DefaultPartSize = 8 << 20
	// DefaultPartConcurrency parts of one upload are in flight at once.
	// Put sends parts straight from the caller's slice and holds no
	// copy; PutReader holds one part-sized buffer per part in flight, so
	// this bounds its memory at DefaultPartConcurrency * PartSize.
	DefaultPartConcurrency = 4
	// DefaultRequestTimeout bounds one HTTP attempt, body included: a
	// 16 MiB transfer fits at 2 MB/s. S3's first byte is usually under
	// 100 ms, so a longer wait is a stalled connection, and retrying it
	// is better than letting a produce request hang on it.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultMaxAttempts per request (the SDK's default is 3): throttling
	// (503 SlowDown) comes in bursts while S3 scales a prefix partition,
	// and a produce request would rather wait a few seconds than fail.
	DefaultMaxAttempts = 5
	// DefaultMaxBackoff caps the jittered exponential wait between
	// attempts (the SDK's default is 20 s, too long for a produce path
	// whose clients time out at 30 s).
	DefaultMaxBackoff = 5 * time.Second
	// DefaultListPageSize is S3's own maximum.
	DefaultListPageSize = 1000
)

// S3Config configures an S3 store. Bucket is required; Open fills it from
// an s3:// URL. Zero values take the defaults above.
type S3Config struct {
	Bucket string
	// Prefix is put ahead of every key; Open makes it end in '/'.
	Prefix string
	// Region of the bucket; empty takes the one of the AWS chain
	// (AWS_REGION, the shared config profile).
	Region string
	// Endpoint overrides the S3 endpoint (MinIO, R2, a test server).
	Endpoint string
	// PathStyle addresses the bucket as endpoint/bucket rather than
	// bucket.endpoint; most S3-compatible servers need it.
	PathStyle bool

	MultipartThreshold int64
	PartSize           int64
	PartConcurrency    int
	RequestTimeout     time.Duration
	MaxAttempts        int
	MaxBackoff         time.Duration
	ListPageSize       int32

	// Credentials overrides the AWS default chain (environment, shared
	// config, web identity, instance role). Tests set it; nil is right
	// everywhere else.
	Credentials aws.CredentialsProvider
}

func (c *S3Config) setDefaults() {
	if c.MultipartThreshold <= 0 {
		c.MultipartThreshold = DefaultMultipartThreshold
	}
	if c.PartSize <= 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PartConcurrency <= 0 {
		c.PartConcurrency = DefaultPartConcurrency
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.ListPageSize <= 0 || c.ListPageSize > DefaultListPageSize {
		c.ListPageSize = DefaultListPageSize
	}
}

// S3 is a Store in an S3 bucket (or an S3-compatible one) through
// aws-sdk-go-v2.
//
// Requests: Put and PutReader are one PutObject below MultipartThreshold,
// else a multipart upload of PartSize parts, PartConcurrency at a time
// (see putMultipart); a failed multipart upload is aborted so that no
// parts stay billed. GetRange is one GetObject with a Range header; its
// edge cases (a range at or past the end, which S3 answers with 416 or a
// short body) cost one HeadObject more. List is ListObjectsV2, one
// request per page.
//
// Failures: every HTTP attempt has RequestTimeout, body included (it is
// the http.Client's timeout). The SDK's standard retryer retries
// throttling (SlowDown, 503), 5xx, timeouts and broken connections up to
// MaxAttempts with jittered exponential backoff; its client-side retry
// token bucket stops retry storms when the bucket keeps failing. A
// GetObject whose body breaks after the headers arrived is outside the
// SDK's retry loop, so GetRange retries that itself. Errors name the
// operation and key and wrap the SDK's error; NoSuchKey wraps ErrNotFound.
//
// Put is atomic as S3 is: an object appears whole or not at all; a
// multipart upload only becomes visible when completed.
type S3 struct {
	cfg    S3Config
	client *s3.Client
	hc     *http.Client // the SDK's, to close idle connections
	// parts recycles PutReader's part buffers (PartSize bytes each)
	// between uploads, so that a jobs agent writing one large object
	// after another does not allocate its part buffers anew each time.
	// It keeps at most PartConcurrency of them (32 MiB at the defaults,
	// and only once PutReader was used). A bounded free list rather than
	// a sync.Pool: a Pool may hand a goroutine a fresh buffer while
	// another P holds a free one, which broke the bound of
	// PartConcurrency buffers per upload that TestS3VersityPutMemory
	// checks.
	parts chan []byte
}

var _ Store = (*S3)(nil)

// NewS3 returns a store on cfg.Bucket. It does not contact S3; Open
// checks the bucket with Check.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("objstore: s3: no bucket name")
	}
	cfg.setDefaults()
	if cfg.PartSize < 5<<20 {
		return nil, fmt.Errorf("objstore: s3: part size %d is below S3's minimum of 5 MiB", cfg.PartSize)
	}
	if cfg.MultipartThreshold < cfg.PartSize {
		// The transfer manager would otherwise send parts of
		// threshold size, below PartSize; keep it simple.
		cfg.MultipartThreshold = cfg.PartSize
	}
	// The SDK's HTTP client (dial and TLS timeouts, pooling, no
	// redirects followed, AWS_CA_BUNDLE) with a timeout on each attempt
	// as a whole, body included.
	hc := awshttp.NewBuildableClient().WithTimeout(cfg.RequestTimeout)
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(hc),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.MaxBackoff = cfg.MaxBackoff
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("objstore: s3: loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("objstore: s3: no region: set region= in the bucket URL or AWS_REGION")
	}
	// Freeze the client the configuration ended with (a custom CA
	// bundle is applied while loading) so that Close can reach it.
	frozen, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		return nil, fmt.Errorf("BUG: objstore: s3: AWS config holds HTTP client %T", awsCfg.HTTPClient)
	}
	httpClient, ok := frozen.Freeze().(*http.Client)
	if !ok {
		return nil, errors.New("BUG: objstore: s3: frozen SDK client is not an *http.Client")
	}
	awsCfg.HTTPClient = httpClient
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Ranged GETs carry no checksum to validate; saying so at
		// every read is noise.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &S3{cfg: cfg, client: client, hc: httpClient, parts: make(chan []byte, cfg.PartConcurrency)}, nil
}

// Bucket returns the bucket name; Prefix the key prefix.
func (s *S3) Bucket() string { return s.cfg.Bucket }

// Prefix returns the prefix put ahead of every key.
func (s *S3) Prefix() string { return s.cfg.Prefix }

// Check asks S3 whether the bucket exists and the credentials reach it
// (HeadBucket, which needs s3:ListBucket, as List does).
func (s *S3) Check(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.cfg.Bucket}); err != nil {
		return fmt.Errorf("objstore: s3: bucket %q: %w", s.cfg.Bucket, err)
	}
	return nil
}

func (s *S3) key(key string) (string, error) {
	if key == "" {
		return "", errEmptyKey
	}
	return s.cfg.Prefix + key, nil
}

// wrap names the operation and key on err and maps "no such key" to
// ErrNotFound. A context error of the caller comes back as itself (wrapped),
// whatever the SDK made of it.
func (s *S3) wrap(ctx context.Context, op Op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("objstore: s3 %s %q: %w (%v)", op, key, cerr, err)
	}
	if isNoSuchKey(err) {
		return fmt.Errorf("objstore: s3 %s %q: %w (%v)", op, key, ErrNotFound, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// Say so plainly: the SDK's text varies with where the attempt
		// was when the timeout hit, and a reader should know which
		// setting to look at.
		return fmt.Errorf("objstore: s3 %s %q: request timed out (timeout=%s per attempt): %w", op, key, s.cfg.RequestTimeout, err)
	}
	return fmt.Errorf("objstore: s3 %s %q: %w", op, key, err)
}

// isNoSuchKey reports whether err says the object does not exist. A HEAD
// has no error body, so a 404 on it is "NotFound" whether the key or the
// bucket is missing; Check is where a missing bucket shows.
func isNoSuchKey(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// isInvalidRange reports whether S3 refused a Range header (416): the
// range starts at or past the end of the object.
func isInvalidRange(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidRange" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}

// Put implements Store. A multipart Put sends each part as a view of
// data: it holds no copy of the object, whatever its size.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, key, int64(len(data)), &sliceParts{data: data})
}

// PutReader implements Store. Below MultipartThreshold the object is read
// into one buffer and sent with PutObject; above it, parts are read into
// recycled part-sized buffers, at most PartConcurrency of them at a time.
func (s *S3) PutReader(ctx context.Context, key string, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("objstore: s3 put %q: negative size %d", key, size)
	}
	return s.put(ctx, key, size, &readerParts{r: ctxReader{ctx, r}, free: s.parts, partSize: s.cfg.PartSize})
}

func (s *S3) put(ctx context.Context, key string, size int64, src partSource) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.wrap(ctx, OpPut, key, err)
	}
	if size >= s.cfg.MultipartThreshold {
		return s.putMultipart(ctx, key, k, size, src)
	}
	body, release, err := src.next(size)
	if err != nil {
		return fmt.Errorf("objstore: s3 put %q: %w", key, err)
	}
	defer release()
	if err := src.finish(); err != nil {
		return fmt.Errorf("objstore: s3 put %q: %w", key, err)
	}
	// The SDK reads the body through and never keeps it, so the caller
	// may reuse its buffer after Put returns.
	if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.cfg.Bucket,
		Key:           &k,
		Body:          body,
		ContentLength: aws.Int64(size),
	}); err != nil {
		return s.wrap(ctx, OpPut, key, err)
	}
	return nil
}

// maxParts is S3's limit on the parts of one multipart upload.
const maxParts = 10000

// putMultipart uploads size bytes from src as a multipart upload: one
// CreateMultipartUpload, PartSize parts with up to PartConcurrency in
// flight, one CompleteMultipartUpload. The object appears only at the
// completion, so the upload is atomic like a PutObject. On any failure
// (a part failing after the SDK's retries, src failing or yielding the
// wrong number of bytes, the caller cancelling, the completion failing)
// the upload is aborted with a context of its own, so that a caller who
// gave up still leaves no parts billed; an abort that fails is reported
// with the error.
//
// Why not the SDK's transfer manager, which did this before: it copies
// every byte into part buffers it allocates per upload ((Concurrency+1)
// parts, plus the first MultipartThreshold bytes read with io.ReadAll),
// about 75 MiB allocated for every upload of 64 or 256 MiB measured
// against versitygw, although Put's caller already holds the object in
// memory. Here Put's parts are views of the caller's slice. The
// request sequence and checksums are the transfer manager's: CRC32 per
// part (the SDK's default integrity protection), listed in the
// completion with the object size.
func (s *S3) putMultipart(ctx context.Context, key, k string, size int64, src partSource) error {
	partSize := s.cfg.PartSize
	if size > partSize*maxParts {
		partSize = (size + maxParts - 1) / maxParts
	}
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            &s.cfg.Bucket,
		Key:               &k,
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return s.wrap(ctx, OpPut, key, err)
	}
	uploadID := created.UploadId

	// The first error cancels the parts in flight; it is the one
	// reported, not the cancellations it caused.
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error                 // guarded by mu
		parts    []types.CompletedPart // guarded by mu
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	// A slot is taken before a part's body is read, so at most
	// PartConcurrency bodies exist at once (PutReader's memory bound).
	slots := make(chan struct{}, s.cfg.PartConcurrency)
	var wg sync.WaitGroup
parts:
	for num, off := int32(1), int64(0); off < size && !failed(); num, off = num+1, off+partSize {
		select {
		case slots <- struct{}{}:
		case <-uctx.Done():
			fail(uctx.Err())
			break parts
		}
		n := min(partSize, size-off)
		body, release, err := src.next(n)
		if err != nil {
			<-slots
			fail(err)
			break parts
		}
		wg.Go(func() {
			defer func() { release(); <-slots }()
			out, err := s.client.UploadPart(uctx, &s3.UploadPartInput{
				Bucket:            &s.cfg.Bucket,
				Key:               &k,
				UploadId:          uploadID,
				PartNumber:        aws.Int32(num),
				Body:              body,
				ContentLength:     aws.Int64(n),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
			})
			if err != nil {
				fail(fmt.Errorf("part %d: %w", num, err))
				return
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num), ChecksumCRC32: out.ChecksumCRC32})
			mu.Unlock()
		})
	}
	wg.Wait()
	if !failed() {
		if err := src.finish(); err != nil {
			fail(err)
		}
	}
	if !failed() {
		slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
		_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          &s.cfg.Bucket,
			Key:             &k,
			UploadId:        uploadID,
			MpuObjectSize:   aws.Int64(size),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		if err == nil {
			return nil
		}
		// A completion that S3 applied but whose reply was lost
		// leaves the object and makes the abort fail with
		// NoSuchUpload: the Put contract allows that outcome.
		fail(err)
	}
	err = firstErr // all goroutines are done
	if aerr := s.abortUpload(ctx, k, uploadID); aerr != nil {
		err = fmt.Errorf("%w (and aborting the upload failed, its parts stay until a lifecycle rule removes them: %v)", err, aerr)
	}
	return s.wrap(ctx, OpPut, key, err)
}

// abortUpload aborts a multipart upload, with a context of its own (a
// caller who gave up still leaves no parts billed), and makes sure it is
// gone. S3 documents that a part upload in progress during the abort may
// still succeed, so that an upload may need aborting more than once to
// free its storage: a part this Put cancelled can land on the server
// after the abort (seen with versitygw, whose listing then showed the
// upload again). So the upload is looked for after each abort and
// aborted again, a few times, backing off. Listing uploads needs
// s3:ListBucketMultipartUploads, which an agent's policy need not grant
// (README): when the listing fails, the upload is aborted once more after
// a pause, blind, and the Put does not fail for it.
func (s *S3) abortUpload(ctx context.Context, k string, uploadID *string) error {
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 3*s.cfg.RequestTimeout)
	defer acancel()
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket:   &s.cfg.Bucket,
			Key:      &k,
			UploadId: uploadID,
		})
		var nsu *types.NoSuchUpload
		if err != nil && !(attempt > 1 && errors.As(err, &nsu)) {
			return err
		}
		// Give a part the Put cancelled a moment to land (or not)
		// before looking: the failure path only, so the wait is rare.
		select {
		case <-time.After(backoff):
		case <-actx.Done():
			return nil
		}
		open, err := s.uploadOpen(actx, k, uploadID)
		if err != nil {
			if attempt == 1 {
				continue // the blind second abort
			}
			return nil
		}
		if !open {
			return nil
		}
		if attempt == 4 {
			return fmt.Errorf("upload %s still listed after %d aborts", aws.ToString(uploadID), attempt)
		}
		backoff *= 2
	}
}

// uploadOpen reports whether the multipart upload is still listed.
func (s *S3) uploadOpen(ctx context.Context, k string, uploadID *string) (bool, error) {
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
		Bucket: &s.cfg.Bucket,
		Prefix: &k,
	})
	if err != nil {
		return false, err
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.UploadId) == aws.ToString(uploadID) && aws.ToString(u.Key) == k {
			return true, nil
		}
	}
	return false, nil
}

// partSource yields an object's bytes as consecutive part bodies.
type partSource interface {
	// next returns a body of the next n bytes, seekable so that the
	// SDK can retry and checksum it, and a release to call once the
	// body is no longer read.
	next(n int64) (body io.ReadSeeker, release func(), err error)
	// finish reports an error if the source holds more bytes than
	// were asked for.
	finish() error
}

// sliceParts cuts a slice into views; it never copies.
type sliceParts struct {
	data []byte
	off  int64
}

func (p *sliceParts) next(n int64) (io.ReadSeeker, func(), error) {
	if n > int64(len(p.data))-p.off {
		return nil, nil, fmt.Errorf("BUG: objstore: part of %d bytes past the end of %d", n, len(p.data))
	}
	b := p.data[p.off : p.off+n : p.off+n]
	p.off += n
	return bytes.NewReader(b), func() {}, nil
}

func (p *sliceParts) finish() error { return nil }

// readerParts reads each part into a buffer, recycled through free when
// it has partSize bytes (the store's part size; a larger part, for an
// object of more than 10,000 parts, or a small object's one buffer is
// allocated for the call).
type readerParts struct {
	r        io.Reader
	free     chan []byte
	partSize int64
	read     int64
}

func (p *readerParts) next(n int64) (io.ReadSeeker, func(), error) {
	var buf []byte
	release := func() {}
	// Only a buffer at most twice the bytes it holds comes from the
	// free list: a small object must not pin a whole part's worth.
	if n <= p.partSize && n > p.partSize/2 {
		var b []byte
		select {
		case b = <-p.free:
		default:
			b = make([]byte, p.partSize)
		}
		buf = b[:n]
		release = func() {
			select {
			case p.free <- b:
			default: // the list is full: let it go
			}
		}
	} else {
		buf = make([]byte, n)
	}
	got, err := io.ReadFull(p.r, buf)
	p.read += int64(got)
	if err != nil {
		release()
		return nil, nil, shortRead(p.read, err)
	}
	return bytes.NewReader(buf), release, nil
}

func (p *readerParts) finish() error { return checkDrained(p.r, p.read) }

// getAttempts bounds GetRange's own retries of a body that broke after the
// response headers (the SDK retries everything before that).
const getAttempts = 3

// errShortBody marks a response body that ended before its Content-Length.
var errShortBody = errors.New("objstore: s3: response body shorter than its Content-Length")

// errShortRange marks a response that holds fewer bytes than asked for:
// S3 truncates a range that ends past the object's end. It is kept apart
// from io.ErrUnexpectedEOF, which a broken connection may wrap too.
var errShortRange = errors.New("objstore: s3: range ends past the end of the object")

// GetRange implements Store.
func (s *S3) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, s.wrap(ctx, OpGet, key, err)
	}
	if off < 0 {
		return nil, fmt.Errorf("%w: %q offset %d", errInvalidRange, key, off)
	}
	// S3 cannot express an empty range, and a range whose end overflows
	// is past any object's end: both are answered from the size alone.
	if length == 0 || (length > 0 && length > math.MaxInt64-off) {
		return s.getBySize(ctx, key, off, length)
	}
	var rng *string
	switch {
	case length > 0:
		rng = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	case off > 0:
		rng = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	for attempt := 1; ; attempt++ {
		b, err := s.get(ctx, k, rng, length)
		switch {
		case err == nil:
			return b, nil
		case isInvalidRange(err):
			// 416: off is at or past the end. At the end is an empty
			// read, not an error; the size tells which.
			return s.getBySize(ctx, key, off, length)
		case errors.Is(err, errShortRange):
			return nil, fmt.Errorf("objstore: s3 get %q range [%d, +%d): %w: %w", key, off, length, err, io.ErrUnexpectedEOF)
		case errors.Is(err, errShortBody) && attempt < getAttempts && ctx.Err() == nil:
			continue // a broken body; the SDK's retries are over by then
		default:
			return nil, s.wrap(ctx, OpGet, key, err)
		}
	}
}

// get is one GetObject (with the SDK's retries) and a full read of its
// body. want is the length asked for, or < 0 for "to the end".
func (s *S3) get(ctx context.Context, k string, rng *string, want int64) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &k, Range: rng})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	n := aws.ToInt64(out.ContentLength)
	if out.ContentLength == nil || n < 0 {
		return nil, fmt.Errorf("objstore: s3: response without Content-Length")
	}
	if want >= 0 && n != want {
		if n < want {
			return nil, fmt.Errorf("%w: got %d bytes of %d (Content-Range %q)", errShortRange, n, want, aws.ToString(out.ContentRange))
		}
		return nil, fmt.Errorf("objstore: s3: asked for %d bytes, response has %d (Content-Range %q)", want, n, aws.ToString(out.ContentRange))
	}
	// Not cleared (internal/uninit): ReadFull fills it or it is dropped.
	b := uninit.Bytes(int(n))[:n]
	if _, err := io.ReadFull(out.Body, b); err != nil {
		return nil, fmt.Errorf("%w: %w", errShortBody, err)
	}
	return b, nil
}

// getBySize answers a GetRange that S3 cannot or need not serve as a
// ranged GET, from a HeadObject: an empty range, or one starting at or
// past the end.
func (s *S3) getBySize(ctx context.Context, key string, off, length int64) ([]byte, error) {
	info, err := s.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	n, err := resolveRange(key, info.Size, off, length)
	if err != nil {
		return nil, err
	}
	if n != 0 {
		// The object changed between the GET and the HEAD (an
		// overwrite): report it rather than read again forever.
		return nil, fmt.Errorf("objstore: s3 get %q: object changed size during the read (now %d bytes)", key, info.Size)
	}
	return []byte{}, nil
}

// Head implements Store.
func (s *S3) Head(ctx context.Context, key string) (ObjectInfo, error) {
	k, err := s.key(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, s.wrap(ctx, OpHead, key, err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &k})
	if err != nil {
		return ObjectInfo{}, s.wrap(ctx, OpHead, key, err)
	}
	return ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Delete implements Store. S3 answers 204 for a missing key too.
func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.wrap(ctx, OpDelete, key, err)
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &k}); err != nil && !isNoSuchKey(err) {
		return s.wrap(ctx, OpDelete, key, err)
	}
	return nil
}

// List implements Store. S3 lists in UTF-8 binary order, which is Go's
// string order. fn runs between page requests, with nothing held.
func (s *S3) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return s.wrap(ctx, OpList, prefix, err)
	}
	p := s.cfg.Prefix + prefix
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:  &s.cfg.Bucket,
		Prefix:  &p,
		MaxKeys: aws.Int32(s.cfg.ListPageSize),
	})
	last := ""
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return s.wrap(ctx, OpList, prefix, err)
		}
		for _, obj := range page.Contents {
			k := aws.ToString(obj.Key)
			if !strings.HasPrefix(k, s.cfg.Prefix) {
				return fmt.Errorf("objstore: s3 list %q: key %q outside the prefix %q", prefix, k, s.cfg.Prefix)
			}
			if k <= last && last != "" {
				// A caller walking keys to delete relies on order.
				return fmt.Errorf("objstore: s3 list %q: keys out of order (%q after %q)", prefix, k, last)
			}
			last = k
			if err := ctx.Err(); err != nil {
				return err
			}
			info := ObjectInfo{Key: k[len(s.cfg.Prefix):], Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close releases idle connections.
func (s *S3) Close() error {
	s.hc.CloseIdleConnections()
	return nil
}
