package rpc

import (
	"context"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// ACLs (issue 14): the three calls on both sides and their conversions.
// Codes travel as Kafka's numbers; a code out of int8's range is refused
// here and any other unknown code by meta's own validation.

func (m *metaServer) CreateACLs(ctx context.Context, r *pb.CreateACLsRequest) (*pb.ErrorsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	bs := d.aclBindings(r.GetBindings())
	if d.err != nil {
		return &pb.ErrorsResponse{Error: invalid(d.err)}, nil
	}
	errs, err := c.CreateACLs(ctx, bs)
	return &pb.ErrorsResponse{Error: encodeErr(err), Errors: encodeErrs(errs)}, nil
}

func (m *metaServer) DeleteACLs(ctx context.Context, r *pb.DeleteACLsRequest) (*pb.DeleteACLsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	fs := make([]meta.ACLFilter, len(r.GetFilters()))
	for i, f := range r.GetFilters() {
		fs[i] = d.aclFilter(f)
	}
	if d.err != nil {
		return &pb.DeleteACLsResponse{Error: invalid(d.err)}, nil
	}
	res, err := c.DeleteACLs(ctx, fs)
	out := &pb.DeleteACLsResponse{Error: encodeErr(err), Results: make([]*pb.DeletedACLs, len(res))}
	for i, x := range res {
		out.Results[i] = &pb.DeletedACLs{Error: encodeErr(x.Err), Bindings: encACLBindings(x.Bindings)}
	}
	return out, nil
}

func (m *metaServer) DescribeACLs(ctx context.Context, r *pb.DescribeACLsRequest) (*pb.DescribeACLsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	f := d.aclFilter(r.GetFilter())
	if d.err != nil {
		return &pb.DescribeACLsResponse{Error: invalid(d.err)}, nil
	}
	bs, err := c.ACLs(ctx, f)
	return &pb.DescribeACLsResponse{Error: encodeErr(err), Bindings: encACLBindings(bs)}, nil
}

// CreateACLs implements meta.Client. A retry is safe: creating a binding
// that exists changes nothing.
func (c *Client) CreateACLs(ctx context.Context, bs []meta.ACLBinding) ([]error, error) {
	req := &pb.CreateACLsRequest{Bindings: encACLBindings(bs)}
	return c.errorsCall(ctx, "CreateACLs", func(mc pb.MetaClient) (*pb.ErrorsResponse, error) {
		return mc.CreateACLs(ctx, req)
	})
}

// DeleteACLs implements meta.Client. A retry is safe, though the retry's
// answer lists only what was still left to delete.
func (c *Client) DeleteACLs(ctx context.Context, fs []meta.ACLFilter) ([]meta.DeletedACLs, error) {
	req := &pb.DeleteACLsRequest{Filters: make([]*pb.ACLFilter, len(fs))}
	for i := range fs {
		req.Filters[i] = encACLFilter(&fs[i])
	}
	return callT(c, ctx, "DeleteACLs", func(mc pb.MetaClient) ([]meta.DeletedACLs, error) {
		r, err := mc.DeleteACLs(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := make([]meta.DeletedACLs, len(r.GetResults()))
		for i, x := range r.GetResults() {
			out[i] = meta.DeletedACLs{Bindings: d.aclBindings(x.GetBindings()), Err: decodeErr(x.GetError())}
		}
		if d.err != nil {
			return nil, malformed("DeleteACLs", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// ACLs implements meta.Client.
func (c *Client) ACLs(ctx context.Context, f meta.ACLFilter) ([]meta.ACLBinding, error) {
	req := &pb.DescribeACLsRequest{Filter: encACLFilter(&f)}
	return callT(c, ctx, "DescribeACLs", func(mc pb.MetaClient) ([]meta.ACLBinding, error) {
		r, err := mc.DescribeACLs(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := d.aclBindings(r.GetBindings())
		if d.err != nil {
			return nil, malformed("DescribeACLs", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

func encACLBindings(bs []meta.ACLBinding) []*pb.ACLBinding {
	out := make([]*pb.ACLBinding, len(bs))
	for i, b := range bs {
		out[i] = &pb.ACLBinding{ResourceType: int32(b.ResourceType), ResourceName: b.ResourceName, PatternType: int32(b.PatternType),
			Principal: b.Principal, Host: b.Host, Operation: int32(b.Operation), Permission: int32(b.Permission)}
	}
	return out
}

func encACLFilter(f *meta.ACLFilter) *pb.ACLFilter {
	return &pb.ACLFilter{ResourceType: int32(f.ResourceType), ResourceName: f.ResourceName, PatternType: int32(f.PatternType),
		Principal: f.Principal, Host: f.Host, Operation: int32(f.Operation), Permission: int32(f.Permission)}
}

// code8 narrows a wire code to Kafka's int8.
func (d *decoder) code8(what string, v int32) int8 {
	if v < -128 || v > 127 {
		d.fail("ACL %s code %d out of range", what, v)
		return 0
	}
	return int8(v)
}

func (d *decoder) aclBindings(bs []*pb.ACLBinding) []meta.ACLBinding {
	out := make([]meta.ACLBinding, len(bs))
	for i, b := range bs {
		out[i] = meta.ACLBinding{
			ResourceType: meta.ResourceType(d.code8("resource type", b.GetResourceType())),
			ResourceName: b.GetResourceName(),
			PatternType:  meta.PatternType(d.code8("pattern type", b.GetPatternType())),
			Principal:    b.GetPrincipal(),
			Host:         b.GetHost(),
			Operation:    meta.ACLOperation(d.code8("operation", b.GetOperation())),
			Permission:   meta.ACLPermission(d.code8("permission", b.GetPermission())),
		}
	}
	return out
}

func (d *decoder) aclFilter(f *pb.ACLFilter) meta.ACLFilter {
	if f == nil {
		d.fail("no ACL filter")
		return meta.ACLFilter{}
	}
	return meta.ACLFilter{
		ResourceType: meta.ResourceType(d.code8("resource type", f.GetResourceType())),
		ResourceName: f.ResourceName,
		PatternType:  meta.PatternType(d.code8("pattern type", f.GetPatternType())),
		Principal:    f.Principal,
		Host:         f.Host,
		Operation:    meta.ACLOperation(d.code8("operation", f.GetOperation())),
		Permission:   meta.ACLPermission(d.code8("permission", f.GetPermission())),
	}
}
