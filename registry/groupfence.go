package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A registry write made by a group's member for the group (the failover
// decider, membership/) is refused once the member's generation has passed,
// by Kafka itself (KIP-447): the write's transaction also commits an offset
// for the group, with the member id and generation the decision was made
// in (AddOffsetsToTxn, then TxnOffsetCommit v3+). The group coordinator
// answers ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID to a
// member of a generation that is not the group's current one (a decider
// paused past its session timeout, or deposed by a rebalance), and the
// transaction is aborted: none of its records is ever read.

// ErrStaleMember says a fenced write's group member is not of the group's
// current generation: the write was aborted.
var ErrStaleMember = errors.New("registry: the writer is not a member of the group's current generation")

// GroupFence is the group membership a registry write is made under.
type GroupFence struct {
	Group      string
	MemberID   string
	InstanceID *string
	Generation int32
}

// commit adds the group's offsets to w's open transaction (transactional id
// txnID) and commits, for topic's partition 0, offset: the registry offset
// the write's view had reached (the group's committed offset is thus the
// registry position of its decider's last write).
func (f *GroupFence) commit(ctx context.Context, w *kgo.Client, txnID, topic string, offset int64) error {
	pid, epoch, err := w.ProducerID(ctx)
	if err != nil {
		return err
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, pid, epoch, f.Group
	addResp, err := add.RequestWith(ctx, w)
	if err != nil {
		return fmt.Errorf("registry: adding group %s's offsets to the write: %w", f.Group, err)
	}
	if err := kerr.ErrorForCode(addResp.ErrorCode); err != nil {
		return fmt.Errorf("registry: adding group %s's offsets to the write: %w", f.Group, err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = txnID, f.Group, pid, epoch
	req.Generation, req.MemberID, req.InstanceID = f.Generation, f.MemberID, f.InstanceID
	t := kmsg.NewTxnOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset, p.LeaderEpoch = 0, offset, -1
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, w)
	if err != nil {
		return fmt.Errorf("registry: committing group %s's offset in the write: %w", f.Group, err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			err := kerr.ErrorForCode(rp.ErrorCode)
			switch {
			case err == nil:
			case errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.FencedInstanceID):
				return fmt.Errorf("%w: member %s of generation %d of group %s: %w", ErrStaleMember, f.MemberID, f.Generation, f.Group, err)
			default:
				return fmt.Errorf("registry: committing group %s's offset in the write: %w", f.Group, err)
			}
		}
	}
	return nil
}
