package rpc

// SASL (issue 14): SCRAM credentials over the network, both halves: the
// Meta service's calls (an agent checks a login, kadm administers users
// through an agent) and the Admin service's user calls (`sluice meta
// users`). Salts and keys only, never a password (meta/scram.go).

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

func encScramCred(c *meta.ScramCredential) *pb.ScramCredential {
	return &pb.ScramCredential{User: c.User, Mechanism: int32(c.Mechanism), Salt: c.Salt,
		Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
}

func decScramCred(p *pb.ScramCredential) meta.ScramCredential {
	return meta.ScramCredential{User: p.GetUser(), Mechanism: meta.ScramMechanism(p.GetMechanism()),
		Salt: p.GetSalt(), Iterations: p.GetIterations(), StoredKey: p.GetStoredKey(), ServerKey: p.GetServerKey()}
}

func encAlterScram(upserts []meta.ScramCredential, deletes []meta.ScramDeletion) *pb.AlterScramCredentialsRequest {
	req := &pb.AlterScramCredentialsRequest{}
	for i := range upserts {
		req.Upserts = append(req.Upserts, encScramCred(&upserts[i]))
	}
	for _, d := range deletes {
		req.Deletes = append(req.Deletes, &pb.ScramDeletion{User: d.User, Mechanism: int32(d.Mechanism)})
	}
	return req
}

// alterScram is the server's half of both services' alter calls. Every
// upsertion is checked again by meta (meta.CheckScramCredential), so a
// field of another size or purpose never reaches the store.
func alterScram(ctx context.Context, c meta.Client, r *pb.AlterScramCredentialsRequest) ([]error, error) {
	var ups []meta.ScramCredential
	for _, u := range r.GetUpserts() {
		ups = append(ups, decScramCred(u))
	}
	var dels []meta.ScramDeletion
	for _, d := range r.GetDeletes() {
		dels = append(dels, meta.ScramDeletion{User: d.GetUser(), Mechanism: meta.ScramMechanism(d.GetMechanism())})
	}
	return c.AlterScramCredentials(ctx, ups, dels)
}

// describeScram is the server's half of both services' describe calls.
func describeScram(ctx context.Context, c meta.Client, r *pb.DescribeScramCredentialsRequest) *pb.DescribeScramCredentialsResponse {
	users := r.GetUsers()
	if r.GetAll() {
		users = nil
	} else if users == nil {
		users = []string{}
	}
	us, err := c.DescribeScramCredentials(ctx, users)
	resp := &pb.DescribeScramCredentialsResponse{Error: encodeErr(err)}
	for _, u := range us {
		pu := &pb.ScramUser{User: u.User, Error: encodeErr(u.Err)}
		for _, ci := range u.Creds {
			pu.Credentials = append(pu.Credentials, &pb.ScramCredentialInfo{Mechanism: int32(ci.Mechanism), Iterations: ci.Iterations})
		}
		resp.Users = append(resp.Users, pu)
	}
	return resp
}

func decDescribeScram(r *pb.DescribeScramCredentialsResponse) ([]meta.ScramUser, error) {
	if err := decodeErr(r.GetError()); err != nil {
		return nil, err
	}
	out := make([]meta.ScramUser, 0, len(r.GetUsers()))
	for _, u := range r.GetUsers() {
		su := meta.ScramUser{User: u.GetUser(), Err: decodeErr(u.GetError())}
		for _, ci := range u.GetCredentials() {
			su.Creds = append(su.Creds, meta.ScramCredentialInfo{Mechanism: meta.ScramMechanism(ci.GetMechanism()), Iterations: ci.GetIterations()})
		}
		out = append(out, su)
	}
	return out, nil
}

// ScramCredential implements meta.Client.
func (c *Client) ScramCredential(ctx context.Context, user string, mech meta.ScramMechanism) (meta.ScramCredential, error) {
	req := &pb.ScramCredentialRequest{User: user, Mechanism: int32(mech)}
	return callT(c, ctx, "ScramCredential", func(mc pb.MetaClient) (meta.ScramCredential, error) {
		r, err := mc.ScramCredential(ctx, req)
		if err != nil {
			return meta.ScramCredential{}, rpcError{err}
		}
		if err := decodeErr(r.Error); err != nil {
			return meta.ScramCredential{}, err
		}
		cred := decScramCred(r.GetCredential())
		// The boundary's check on decode: these bytes are a credential
		// of the user asked for, of the expected sizes, or nothing.
		if err := meta.CheckScramCredential(&cred); err != nil || cred.User != user || cred.Mechanism != mech {
			if err == nil {
				err = meta.ErrScramUnacceptable
			}
			return meta.ScramCredential{}, malformed("ScramCredential", err)
		}
		return cred, nil
	})
}

// AlterScramCredentials implements meta.Client.
func (c *Client) AlterScramCredentials(ctx context.Context, upserts []meta.ScramCredential, deletes []meta.ScramDeletion) ([]error, error) {
	req := encAlterScram(upserts, deletes)
	return c.errorsCall(ctx, "AlterScramCredentials", func(mc pb.MetaClient) (*pb.ErrorsResponse, error) {
		return mc.AlterScramCredentials(ctx, req)
	})
}

// DescribeScramCredentials implements meta.Client.
func (c *Client) DescribeScramCredentials(ctx context.Context, users []string) ([]meta.ScramUser, error) {
	req := &pb.DescribeScramCredentialsRequest{Users: users, All: users == nil}
	return callT(c, ctx, "DescribeScramCredentials", func(mc pb.MetaClient) ([]meta.ScramUser, error) {
		r, err := mc.DescribeScramCredentials(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		return decDescribeScram(r)
	})
}

func (m *metaServer) ScramCredential(ctx context.Context, r *pb.ScramCredentialRequest) (*pb.ScramCredentialResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := c.ScramCredential(ctx, r.GetUser(), meta.ScramMechanism(r.GetMechanism()))
	if err != nil {
		return &pb.ScramCredentialResponse{Error: encodeErr(err)}, nil
	}
	return &pb.ScramCredentialResponse{Credential: encScramCred(&cred)}, nil
}

func (m *metaServer) AlterScramCredentials(ctx context.Context, r *pb.AlterScramCredentialsRequest) (*pb.ErrorsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	errs, err := alterScram(ctx, c, r)
	return &pb.ErrorsResponse{Error: encodeErr(err), Errors: encodeErrs(errs)}, nil
}

func (m *metaServer) DescribeScramCredentials(ctx context.Context, r *pb.DescribeScramCredentialsRequest) (*pb.DescribeScramCredentialsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	return describeScram(ctx, c, r), nil
}

// ClusterBackend is implemented by a Backend that hands out a cluster's
// Client by name (meta/host); the Admin service's user calls need it and
// answer UNIMPLEMENTED without it.
type ClusterBackend interface {
	ClusterClient(ctx context.Context, cluster string) (meta.Client, error)
}

// cluster authenticates an admin call and finds its cluster. A gRPC
// status error refuses the call (isRefusal); any other error goes back in
// band.
func (a *adminServer) cluster(ctx context.Context, name string) (meta.Client, error) {
	if err := a.auth(ctx); err != nil {
		return nil, err
	}
	cb, ok := a.s.b.(ClusterBackend)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "meta: this server does not administer users")
	}
	return cb.ClusterClient(ctx, name)
}

func isRefusal(err error) bool {
	_, ok := status.FromError(err)
	return err != nil && ok
}

func (a *adminServer) AlterUsers(ctx context.Context, r *pb.AlterUsersRequest) (*pb.ErrorsResponse, error) {
	c, err := a.cluster(ctx, r.GetCluster())
	if isRefusal(err) {
		return nil, err
	}
	if err != nil {
		return &pb.ErrorsResponse{Error: encodeErr(err)}, nil
	}
	errs, err := alterScram(ctx, c, r.GetChanges())
	if err == nil {
		a.s.log.Info("meta/rpc: SCRAM users altered", "cluster", r.GetCluster(), "upserts", len(r.GetChanges().GetUpserts()),
			"deletes", len(r.GetChanges().GetDeletes()), "peer", peerAddr(ctx))
	}
	return &pb.ErrorsResponse{Error: encodeErr(err), Errors: encodeErrs(errs)}, nil
}

func (a *adminServer) DescribeUsers(ctx context.Context, r *pb.DescribeUsersRequest) (*pb.DescribeScramCredentialsResponse, error) {
	c, err := a.cluster(ctx, r.GetCluster())
	if isRefusal(err) {
		return nil, err
	}
	if err != nil {
		return &pb.DescribeScramCredentialsResponse{Error: encodeErr(err)}, nil
	}
	return describeScram(ctx, c, r.GetDescribe()), nil
}

// AlterUsers sets and deletes SCRAM credentials of a cluster's users.
func (a *AdminClient) AlterUsers(ctx context.Context, cluster string, upserts []meta.ScramCredential, deletes []meta.ScramDeletion) ([]error, error) {
	r, err := a.c.AlterUsers(ctx, &pb.AlterUsersRequest{Cluster: cluster, Changes: encAlterScram(upserts, deletes)})
	if err != nil {
		return nil, adminErr(ctx, "AlterUsers", err)
	}
	return decodeErrs(r.GetErrors()), decodeErr(r.GetError())
}

// DescribeUsers describes a cluster's SCRAM users (all when users is nil).
func (a *AdminClient) DescribeUsers(ctx context.Context, cluster string, users []string) ([]meta.ScramUser, error) {
	req := &pb.DescribeUsersRequest{Cluster: cluster, Describe: &pb.DescribeScramCredentialsRequest{Users: users, All: users == nil}}
	r, err := a.c.DescribeUsers(ctx, req)
	if err != nil {
		return nil, adminErr(ctx, "DescribeUsers", err)
	}
	return decDescribeScram(r)
}
