package server

// DescribeUserScramCredentials v0 and AlterUserScramCredentials v0
// (KIP-554): SCRAM users administered with Kafka's own APIs, so kadm,
// kafka-configs.sh and UI tools work. The client salts the password;
// the agent derives the stored and server keys from the salted password
// (ScramKeys) and sends meta those, never the salted password itself.
//
// Errors per user, as Kafka gives them: a user named twice in one
// request (in upsertions and deletions together, or twice in a describe)
// gets DUPLICATE_RESOURCE; an empty name, an iteration count outside
// [4096, 16384] or an empty salt UNACCEPTABLE_CREDENTIAL; a mechanism
// other than SCRAM-SHA-256/512 UNSUPPORTED_SASL_MECHANISM; deleting or
// describing a user without a credential RESOURCE_NOT_FOUND.
//
// Authorization (ALTER / DESCRIBE on the cluster) is the authorizer's,
// which checks every handler.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() {
	register(int16(kmsg.DescribeUserSCRAMCredentials), 0, 0, handleDescribeUserScramCredentials)
	register(int16(kmsg.AlterUserSCRAMCredentials), 0, 0, handleAlterUserScramCredentials)
}

// scramAdminTimeout bounds one administration call to meta.
const scramAdminTimeout = 30 * time.Second

func handleDescribeUserScramCredentials(s *Server, rc *reqCtx, req kmsg.Request) {
	r := req.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), scramAdminTimeout)
	defer cancel()
	// Null or empty: every user (Kafka's DescribeUserScramCredentials).
	var users []string
	seen := map[string]int{}
	if len(r.Users) > 0 {
		users = []string{}
		for _, u := range r.Users {
			seen[u.Name]++
			if seen[u.Name] == 1 {
				users = append(users, u.Name)
			}
		}
	}
	// DESCRIBE on the cluster (authz.go), as Kafka's authorizer asks.
	if !s.authorizeCluster(rc, meta.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		rc.respond(resp)
		return
	}
	described, err := s.deps.Meta.DescribeScramCredentials(ctx, users)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		msg := err.Error()
		resp.ErrorMessage = &msg
		rc.respond(resp)
		return
	}
	for _, u := range described {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u.User
		switch {
		case seen[u.User] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
			msg := "Cannot describe SCRAM credentials for the same user twice in a single request: " + u.User
			res.ErrorMessage = &msg
		case u.Err != nil:
			res.ErrorCode = errorCode(u.Err)
			msg := "Attempt to describe a user credential that does not exist: " + u.User
			res.ErrorMessage = &msg
		default:
			for _, c := range u.Creds {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = int8(c.Mechanism), c.Iterations
				res.CredentialInfos = append(res.CredentialInfos, ci)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	rc.respond(resp)
}

func handleAlterUserScramCredentials(s *Server, rc *reqCtx, req kmsg.Request) {
	r := req.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	// Every user gets one result: the first error found for it, or the
	// outcome of its changes.
	userErr := map[string]error{}
	var order []string
	note := func(user string, err error) {
		if _, ok := userErr[user]; !ok {
			order = append(order, user)
			userErr[user] = nil
		}
		if userErr[user] == nil && err != nil {
			userErr[user] = err
		}
	}
	// Kafka counts duplicates per (user, mechanism): one request may
	// set both mechanisms of a user.
	type userMech struct {
		user string
		mech int8
	}
	count := map[userMech]int{}
	for _, u := range r.Upsertions {
		count[userMech{u.Name, u.Mechanism}]++
	}
	for _, d := range r.Deletions {
		count[userMech{d.Name, d.Mechanism}]++
	}
	// ALTER on the cluster (authz.go), as Kafka's authorizer asks: every
	// user of the request gets CLUSTER_AUTHORIZATION_FAILED.
	if !s.authorizeCluster(rc, meta.OpAlter) {
		for _, u := range r.Upsertions {
			note(u.Name, errClusterDenied)
		}
		for _, d := range r.Deletions {
			note(d.Name, errClusterDenied)
		}
		r.Upsertions, r.Deletions = nil, nil
	}
	var ups []meta.ScramCredential
	var upUsers []string
	for _, u := range r.Upsertions {
		switch {
		case count[userMech{u.Name, u.Mechanism}] > 1:
			note(u.Name, errScramDuplicate)
			continue
		case u.Name == "":
			note(u.Name, meta.ErrScramUnacceptable)
			continue
		}
		stored, server, err := ScramKeys(meta.ScramMechanism(u.Mechanism), u.SaltedPassword)
		if err != nil {
			note(u.Name, err)
			continue
		}
		c := meta.ScramCredential{User: u.Name, Mechanism: meta.ScramMechanism(u.Mechanism), Salt: u.Salt,
			Iterations: u.Iterations, StoredKey: stored, ServerKey: server}
		if err := meta.CheckScramCredential(&c); err != nil {
			note(u.Name, err)
			continue
		}
		note(u.Name, nil)
		ups = append(ups, c)
		upUsers = append(upUsers, u.Name)
	}
	var dels []meta.ScramDeletion
	var delUsers []string
	for _, d := range r.Deletions {
		switch {
		case count[userMech{d.Name, d.Mechanism}] > 1:
			note(d.Name, errScramDuplicate)
			continue
		case d.Name == "":
			note(d.Name, meta.ErrScramUnacceptable)
			continue
		case d.Mechanism != int8(meta.ScramSHA256) && d.Mechanism != int8(meta.ScramSHA512):
			note(d.Name, meta.ErrScramMechanism)
			continue
		}
		note(d.Name, nil)
		dels = append(dels, meta.ScramDeletion{User: d.Name, Mechanism: meta.ScramMechanism(d.Mechanism)})
		delUsers = append(delUsers, d.Name)
	}
	if len(ups)+len(dels) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), scramAdminTimeout)
		errs, err := s.deps.Meta.AlterScramCredentials(ctx, ups, dels)
		cancel()
		for i, u := range append(upUsers, delUsers...) {
			switch {
			case err != nil:
				userErr[u] = err
			case i < len(errs) && errs[i] != nil:
				userErr[u] = errs[i]
			}
		}
	}
	for _, u := range order {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = u
		if err := userErr[u]; err == errClusterDenied {
			res.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		} else if err != nil {
			res.ErrorCode = errorCode(err)
			msg := scramAdminMessage(err)
			res.ErrorMessage = &msg
		}
		resp.Results = append(resp.Results, res)
	}
	rc.respond(resp)
}

// errClusterDenied: the principal may not ALTER the cluster.
var errClusterDenied = errors.New("not authorized to alter the cluster's SCRAM credentials")

// errScramDuplicate: one (user, mechanism) altered twice in a request.
var errScramDuplicate = errors.New("a user credential altered twice in one request")

func scramAdminMessage(err error) string {
	switch err {
	case errScramDuplicate:
		return "A user credential cannot be altered twice in the same request"
	case meta.ErrScramUnacceptable:
		return "Unacceptable credential: the user name must not be empty, iterations must be within [4096, 16384], the salt must not be empty"
	case meta.ErrScramMechanism:
		return "Unknown SCRAM mechanism"
	case meta.ErrScramUserNotFound:
		return "Attempt to delete a user credential that does not exist"
	}
	return err.Error()
}
