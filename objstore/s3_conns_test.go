package objstore

import (
	"context"
	"fmt"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
)

// The S3 client keeps its connections: puts and ranged gets one after
// another go over one connection, so an agent does not pay a TCP and TLS
// handshake per object. A response body left unread or unclosed (a
// ranged GET read short, say) would make the transport drop the
// connection and fail this. (versitygw itself closes connections unless
// started with --keep-alive, which s3test does.)
func TestS3ReusesConnections(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			s := openVersityScheme(t, scheme, "conns/")
			var fresh, reused atomic.Int64
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) {
					if i.Reused {
						reused.Add(1)
					} else {
						fresh.Add(1)
					}
				},
			})
			data := make([]byte, 3<<20)
			for i := range 8 {
				key := fmt.Sprintf("obj-%d", i)
				if err := s.Put(ctx, key, data); err != nil {
					t.Fatal(err)
				}
				if _, err := s.GetRange(ctx, key, 1<<20, 64<<10); err != nil {
					t.Fatal(err)
				}
			}
			if fresh.Load() > 1 || reused.Load() < 15 {
				t.Fatalf("16 requests in a row opened %d connections and reused one %d times; want 1 and 15", fresh.Load(), reused.Load())
			}
		})
	}
}
