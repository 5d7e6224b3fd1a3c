package rpc

// SASL (issue 14): SCRAM credentials over the Meta service, both halves.

import (
	"context"

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
	req := &pb.AlterScramCredentialsRequest{}
	for i := range upserts {
		req.Upserts = append(req.Upserts, encScramCred(&upserts[i]))
	}
	for _, d := range deletes {
		req.Deletes = append(req.Deletes, &pb.ScramDeletion{User: d.User, Mechanism: int32(d.Mechanism)})
	}
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
		if err := decodeErr(r.Error); err != nil {
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
	var ups []meta.ScramCredential
	for _, u := range r.GetUpserts() {
		ups = append(ups, decScramCred(u))
	}
	var dels []meta.ScramDeletion
	for _, d := range r.GetDeletes() {
		dels = append(dels, meta.ScramDeletion{User: d.GetUser(), Mechanism: meta.ScramMechanism(d.GetMechanism())})
	}
	errs, err := c.AlterScramCredentials(ctx, ups, dels)
	return &pb.ErrorsResponse{Error: encodeErr(err), Errors: encodeErrs(errs)}, nil
}

func (m *metaServer) DescribeScramCredentials(ctx context.Context, r *pb.DescribeScramCredentialsRequest) (*pb.DescribeScramCredentialsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
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
	return resp, nil
}
