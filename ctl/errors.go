package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// This file turns what the cluster answers into plain words. The Kafka
// error's name stays in parentheses (it is what people search for), and
// the message ends with what to do: the flag to change or the command to
// run. The broker's own error message, when it sent one, follows the name.

// subject is what a failed request was about, for the message.
type subject struct {
	kind string // "topic", "group", "" (the cluster)
	name string
}

func topicSubject(name string) subject { return subject{"topic", name} }
func groupSubject(name string) subject { return subject{"group", name} }

// explain maps err (often a *kerr.Error from a per-topic or per-group
// result) to a message about s; serverMsg is the broker's error message
// when it sent one. Errors that are not Kafka error codes pass through
// with the subject prefixed.
func explain(err error, s subject, serverMsg string) error {
	if err == nil {
		return nil
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		if isContextErr(err) {
			return fmt.Errorf("%s: no answer within --timeout (%v); raise --timeout or check that the cluster is healthy", s, err)
		}
		return fmt.Errorf("%s: %w", s, err)
	}
	// Where the plain words say all there is (a name that does not exist,
	// or already does), the broker's message would only repeat them.
	name := ke.Message
	tag := name
	if serverMsg != "" && serverMsg != ke.Description {
		tag += ": " + serverMsg
	}
	var what string
	switch ke.Code {
	case kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code:
		what = fmt.Sprintf("topic %q does not exist (%s); list topics with `sluice topic list`", s.name, name)
	case kerr.TopicAlreadyExists.Code:
		what = fmt.Sprintf("topic %q already exists (%s); see it with `sluice topic describe %s`", s.name, name, s.name)
	case kerr.InvalidTopicException.Code:
		what = fmt.Sprintf("%q is not a valid topic name (%s); use 1-249 characters of a-z A-Z 0-9 . _ -", s.name, tag)
	case kerr.InvalidPartitions.Code:
		what = fmt.Sprintf("%s: partition count refused (%s); change --partitions or --num", s, tag)
	case kerr.InvalidReplicationFactor.Code:
		what = fmt.Sprintf("%s: replication factor refused (%s); change --replicas", s, tag)
	case kerr.InvalidConfig.Code:
		what = fmt.Sprintf("%s: config refused (%s); change --config or --set (see `sluice topic describe %s --all-configs`)", s, tag, s.name)
	case kerr.PolicyViolation.Code:
		what = fmt.Sprintf("%s: refused by the cluster's policy (%s)", s, tag)
	case kerr.GroupIDNotFound.Code:
		what = fmt.Sprintf("group %q does not exist (%s); list groups with `sluice group list`", s.name, name)
	case kerr.NonEmptyGroup.Code:
		what = fmt.Sprintf("group %q still has members (%s); stop its consumers first", s.name, tag)
	case kerr.InvalidGroupID.Code:
		what = fmt.Sprintf("%q is not a valid group name (%s)", s.name, tag)
	case kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code, kerr.CoordinatorLoadInProgress.Code:
		what = fmt.Sprintf("%s: the group coordinator is not available (%s); retry, or raise --timeout", s, tag)
	case kerr.UnknownMemberID.Code, kerr.IllegalGeneration.Code, kerr.RebalanceInProgress.Code:
		what = fmt.Sprintf("group %q is active (%s); stop its consumers first", s.name, tag)
	case kerr.TopicAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Code,
		kerr.TransactionalIDAuthorizationFailed.Code:
		what = fmt.Sprintf("%s: not authorized (%s); log in as another user with --sasl-user, or ask for an ACL", s, tag)
	case kerr.SaslAuthenticationFailed.Code, kerr.IllegalSaslState.Code, kerr.UnsupportedSaslMechanism.Code:
		what = fmt.Sprintf("login refused (%s); check --sasl-mechanism, --sasl-user and --sasl-password", tag)
	case kerr.RequestTimedOut.Code:
		what = fmt.Sprintf("%s: the cluster timed out (%s); raise --timeout", s, tag)
	case kerr.UnsupportedVersion.Code:
		what = fmt.Sprintf("%s: the cluster does not support this request (%s)", s, tag)
	default:
		what = fmt.Sprintf("%s: %s (%s)", s, ke.Description, tag)
	}
	return errors.New(what)
}

func (s subject) String() string {
	switch {
	case s.kind == "":
		return "cluster"
	case s.name == "":
		return s.kind
	}
	return fmt.Sprintf("%s %q", s.kind, s.name)
}

// unreachable explains a failed first contact with the cluster: no broker
// answered, TLS failed, or the login was refused.
func (e *env) unreachable(err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return explain(err, subject{}, "")
	}
	hint := "check --brokers (or $" + EnvBrokers + ")"
	msg := err.Error()
	switch {
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:"):
		hint = "check --tls, --tls-ca, --tls-cert and --tls-key"
	case strings.Contains(msg, "SASL") || strings.Contains(msg, "sasl"):
		hint = "check --sasl-mechanism, --sasl-user and --sasl-password"
	case isContextErr(err):
		hint += ", or raise --timeout"
	}
	return fmt.Errorf("cannot reach a broker at %s within --timeout %s (%v); %s",
		strings.Join(e.conn.seeds, ","), e.conn.timeout, err, hint)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// errUnknownTopic stands for a topic missing from a Metadata answer.
var errUnknownTopic error = kerr.UnknownTopicOrPartition
