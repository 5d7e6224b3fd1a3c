package server

// ApiVersions, versions 0–4.
//
// The advertised list is derived from the handler registry, so it cannot
// drift from what is served (invariant 9). An unsupported ApiVersions
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
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}

func handleApiVersions(s *Server, rc *reqCtx, _ kmsg.Request) {
	rc.respond(apiVersionsResponse(rc.version))
}
