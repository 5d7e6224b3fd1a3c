package server

// ApiVersions, versions 0–4.
//
// The advertised list is derived from the handler registry, so it cannot
// drift from what is served (invariant 9), with one deliberate exception
// that Apache Kafka 4.0 makes too (KAFKA-18659): Produce is advertised
// from version 0 although only 3 and up are served. librdkafka (through
// at least 2.x, librdkafka#4956) compresses with gzip, snappy or lz4 only
// when the broker lists Produce v0, and otherwise silently sends those
// batches uncompressed. Every client picks the highest version both
// sides know, so none sends v0–2; one that did would have its connection
// closed like any request of a version not served (dispatch).
// An unsupported ApiVersions
// version is answered in v0 with UNSUPPORTED_VERSION and the list, so the
// client can retry with a version we have (KIP-511); see dispatch.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(int16(kmsg.ApiVersions), 0, 4, handleApiVersions) }

func apiVersionsResponse(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(version)
	for _, k := range supportedKeys() {
		h := handlers[k]
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, h.min, h.max
		if k == int16(kmsg.Produce) {
			ak.MinVersion = 0 // see the top of this file
		}
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}

func handleApiVersions(s *Server, rc *reqCtx, _ kmsg.Request) {
	rc.respond(apiVersionsResponse(rc.version))
}
