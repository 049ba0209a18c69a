package checkpoint

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
)

var (
	// ErrLeaseLost means this worker no longer holds the shard's lease: a
	// fenced write failed its condition (another worker took the lease, or
	// the row was deleted), the lease expired locally, or it was released.
	// Whoever sees it must stop processing the shard, discard state and not
	// checkpoint.
	ErrLeaseLost = errors.New("lease lost")

	// ErrCheckpointBackwards refuses a checkpoint below the stored one.
	ErrCheckpointBackwards = errors.New("checkpoint would move backwards")

	// ErrShardEnded refuses a sequence-number checkpoint after SHARD_END,
	// which is final.
	ErrShardEnded = errors.New("shard already checkpointed at SHARD_END")

	// ErrInvalidSequence refuses a checkpoint that is neither a decimal
	// sequence number nor SHARD_END.
	ErrInvalidSequence = errors.New("invalid sequence number")

	// ErrLeaseStealingUnsupported is returned by ListActiveWorkers and
	// ClaimShard: run the engine with EnableLeaseStealing=false.
	ErrLeaseStealingUnsupported = errors.New("lease stealing not supported: set EnableLeaseStealing=false")

	// ErrLeaseHeld refuses to delete the row of a shard that another worker
	// still holds and that has not reached SHARD_END.
	ErrLeaseHeld = errors.New("lease row still owned and not at SHARD_END")

	// ErrUnknownShard means the shard is not in the stream's shard list.
	ErrUnknownShard = errors.New("shard not in stream")

	// ErrWrongWorker means the engine asked for a lease for a worker id other
	// than the store's own: the engine and store configs disagree.
	ErrWrongWorker = errors.New("worker id does not match the store's")
)

// NotAcquiredError says why a take attempt did not get the lease. It
// unwraps to the engine's chk.ErrLeaseNotAcquired so the engine's
// errors.As check treats it as routine (no error log) and moves on.
type NotAcquiredError struct {
	ShardID string
	// Owner is the current owner as last seen ("" when unowned).
	Owner  string
	Reason string
}

func (e *NotAcquiredError) Error() string {
	if e.Owner != "" {
		return fmt.Sprintf("shard %s: lease not acquired (owner %s): %s", e.ShardID, e.Owner, e.Reason)
	}
	return fmt.Sprintf("shard %s: lease not acquired: %s", e.ShardID, e.Reason)
}

// Unwrap exposes the engine's marker type (its cause field is unexported,
// so the zero value is the only one we can build).
func (e *NotAcquiredError) Unwrap() error { return chk.ErrLeaseNotAcquired{} }

// CheckpointError is a refused checkpoint; it unwraps to
// ErrCheckpointBackwards, ErrShardEnded or ErrInvalidSequence.
type CheckpointError struct {
	ShardID   string
	Current   string
	Requested string
	Err       error
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("shard %s: checkpoint %q (stored %q): %v", e.ShardID, e.Requested, e.Current, e.Err)
}

func (e *CheckpointError) Unwrap() error { return e.Err }

// IsLeaseLost reports whether err means the lease is gone.
func IsLeaseLost(err error) bool { return errors.Is(err, ErrLeaseLost) }

// AWS error classification lives here only. The typed SDK errors are tried
// first; the code check covers servers whose errors the SDK leaves generic.

func conditionFailed(err error) (*types.ConditionalCheckFailedException, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf, true
	}
	if apiCode(err) == "ConditionalCheckFailedException" {
		return &types.ConditionalCheckFailedException{}, true
	}
	return nil, false
}

func isResourceNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf) || apiCode(err) == "ResourceNotFoundException"
}

func isResourceInUse(err error) bool {
	var iu *types.ResourceInUseException
	return errors.As(err, &iu) || apiCode(err) == "ResourceInUseException"
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
