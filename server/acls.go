package server

// CreateAcls 1–3, DescribeAcls 1–3, DeleteAcls 1–3 (issue 14): the
// cluster's ACL bindings in meta (meta/acls.go), which every agent's
// authorizer enforces (authz.go). CreateAcls and DeleteAcls need ALTER
// on the cluster, DescribeAcls DESCRIBE, as in Kafka. Version 0 (no
// pattern type) is not served: Kafka 4.0 removed it too (KIP-896), and
// every current client sends 1 or later.
//
// Unlike Kafka without an authorizer (SECURITY_DISABLED), the APIs work
// with --authorizer none: bindings can be written before acl or shadow
// mode is switched on. A change is in force on the agent that made it
// when the answer is sent, and on every other agent once meta's commit
// event reaches it (docs/security.md measures it).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() {
	register(int16(kmsg.CreateACLs), 1, 3, handleCreateACLs)
	register(int16(kmsg.DescribeACLs), 1, 3, handleDescribeACLs)
	register(int16(kmsg.DeleteACLs), 1, 3, handleDeleteACLs)
}

func handleCreateACLs(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	if !s.authorizeCluster(rc, meta.OpAlter) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		rc.respond(resp)
		return
	}
	bs := make([]meta.ACLBinding, 0, len(req.Creations))
	idx := make([]int, 0, len(req.Creations))
	for i, c := range req.Creations {
		b := meta.ACLBinding{
			ResourceType: meta.ResourceType(c.ResourceType),
			ResourceName: c.ResourceName,
			PatternType:  meta.PatternType(c.ResourcePatternType),
			Principal:    c.Principal,
			Host:         c.Host,
			Operation:    meta.ACLOperation(c.Operation),
			Permission:   meta.ACLPermission(c.PermissionType),
		}
		if err := b.Validate(); err != nil {
			resp.Results[i].ErrorCode = errorCode(err)
			resp.Results[i].ErrorMessage = kmsg.StringPtr(err.Error())
			continue
		}
		bs = append(bs, b)
		idx = append(idx, i)
	}
	if len(bs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
		errs, err := s.deps.Meta.CreateACLs(ctx, bs)
		cancel()
		for k, i := range idx {
			e := err
			if e == nil && k < len(errs) {
				e = errs[k]
			}
			if e != nil {
				resp.Results[i].ErrorCode = errorCode(e)
				resp.Results[i].ErrorMessage = kmsg.StringPtr(e.Error())
			}
		}
		if err != nil {
			s.log.Warn("create acls", "err", err)
		} else {
			s.authzReloadNow()
		}
	}
	rc.respond(resp)
}

// aclFilter converts a Kafka filter.
func aclFilter(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal, host *string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) meta.ACLFilter {
	return meta.ACLFilter{
		ResourceType: meta.ResourceType(rt),
		ResourceName: name,
		PatternType:  meta.PatternType(pt),
		Principal:    principal,
		Host:         host,
		Operation:    meta.ACLOperation(op),
		Permission:   meta.ACLPermission(perm),
	}
}

func handleDescribeACLs(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if !s.authorizeCluster(rc, meta.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		rc.respond(resp)
		return
	}
	f := aclFilter(req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType)
	if err := f.Validate(); err != nil {
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = kmsg.StringPtr(err.Error())
		rc.respond(resp)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	bs, err := s.deps.Meta.ACLs(ctx, f)
	cancel()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = kmsg.StringPtr(err.Error())
		rc.respond(resp)
		return
	}
	// One resource per (type, name, pattern type), bindings in meta's
	// order under it.
	type resKey struct {
		rt   meta.ResourceType
		name string
		pt   meta.PatternType
	}
	at := map[resKey]int{}
	for _, b := range bs {
		k := resKey{b.ResourceType, b.ResourceName, b.PatternType}
		i, ok := at[k]
		if !ok {
			i = len(resp.Resources)
			at[k] = i
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType = kmsg.ACLResourceType(b.ResourceType)
			res.ResourceName = b.ResourceName
			res.ResourcePatternType = kmsg.ACLResourcePatternType(b.PatternType)
			resp.Resources = append(resp.Resources, res)
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host = b.Principal, b.Host
		a.Operation = kmsg.ACLOperation(b.Operation)
		a.PermissionType = kmsg.ACLPermissionType(b.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, a)
	}
	rc.respond(resp)
}

func handleDeleteACLs(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	if !s.authorizeCluster(rc, meta.OpAlter) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		rc.respond(resp)
		return
	}
	fs := make([]meta.ACLFilter, 0, len(req.Filters))
	idx := make([]int, 0, len(req.Filters))
	for i, f := range req.Filters {
		mf := aclFilter(f.ResourceType, f.ResourceName, f.ResourcePatternType, f.Principal, f.Host, f.Operation, f.PermissionType)
		if err := mf.Validate(); err != nil {
			resp.Results[i].ErrorCode = errorCode(err)
			resp.Results[i].ErrorMessage = kmsg.StringPtr(err.Error())
			continue
		}
		fs = append(fs, mf)
		idx = append(idx, i)
	}
	if len(fs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
		res, err := s.deps.Meta.DeleteACLs(ctx, fs)
		cancel()
		for k, i := range idx {
			rr := &resp.Results[i]
			switch {
			case err != nil:
				rr.ErrorCode = errorCode(err)
				rr.ErrorMessage = kmsg.StringPtr(err.Error())
			case k >= len(res):
				rr.ErrorCode = kerr.UnknownServerError.Code
			case res[k].Err != nil:
				rr.ErrorCode = errorCode(res[k].Err)
				rr.ErrorMessage = kmsg.StringPtr(res[k].Err.Error())
			default:
				for _, b := range res[k].Bindings {
					m := kmsg.NewDeleteACLsResponseResultMatchingACL()
					m.ResourceType = kmsg.ACLResourceType(b.ResourceType)
					m.ResourceName = b.ResourceName
					m.ResourcePatternType = kmsg.ACLResourcePatternType(b.PatternType)
					m.Principal, m.Host = b.Principal, b.Host
					m.Operation = kmsg.ACLOperation(b.Operation)
					m.PermissionType = kmsg.ACLPermissionType(b.Permission)
					rr.MatchingACLs = append(rr.MatchingACLs, m)
				}
			}
		}
		if err != nil {
			s.log.Warn("delete acls", "err", err)
		} else {
			s.authzReloadNow()
		}
	}
	rc.respond(resp)
}

// authzReloadNow re-reads the ACLs on this agent before an ACL change is
// answered, so that the client that made it sees it in force here at
// once; other agents follow meta's commit event.
func (s *Server) authzReloadNow() {
	if s.authz == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	if err := s.authz.load(ctx); err != nil {
		s.authz.changed() // the loop retries
	}
}
