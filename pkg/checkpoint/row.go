package checkpoint

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
)

// Lease table attributes. The first six are vmware-go-kcl-v2's (same names
// and formats), the rest are ours; see doc.go.
const (
	attrShardID        = chk.LeaseKeyKey       // S, key
	attrOwner          = chk.LeaseOwnerKey     // S
	attrLeaseTimeout   = chk.LeaseTimeoutKey   // S, RFC3339Nano, informational
	attrCheckpoint     = chk.SequenceNumberKey // S
	attrParent         = chk.ParentShardIdKey  // S
	attrCounter        = "LeaseCounter"        // N
	attrAdjacent       = "AdjacentParentShardId"
	attrOwnerSwitches  = "OwnerSwitchesSinceCheckpoint" // N
	attrCheckpointedAt = "CheckpointedAt"               // S, RFC3339Nano
	attrCheckpointer   = "CheckpointedBy"               // S
	attrClaim          = chk.ClaimRequestKey            // S: worker asking for a hand-over
	attrClaimedAt      = "ClaimedAt"                    // S, RFC3339Nano
)

// ShardEnd is the checkpoint of a shard read to its end.
const ShardEnd = chk.ShardEnd

// row is one decoded lease-table item.
type row struct {
	ShardID        string
	Owner          string
	LeaseTimeout   string
	Checkpoint     string
	Parent         string
	Adjacent       string
	CheckpointedAt string
	Claim          string
	ClaimedAt      string
	// HasCounter is false for rows written only by vmware-go-kcl-v2.
	HasCounter    bool
	Counter       int64
	OwnerSwitches int64
}

func parseRow(item map[string]types.AttributeValue) (row, error) {
	var r row
	var err error
	str := func(name string) string {
		switch v := item[name].(type) {
		case nil:
			return ""
		case *types.AttributeValueMemberS:
			return v.Value
		default:
			if err == nil {
				err = fmt.Errorf("attribute %s: want S, got %T", name, v)
			}
			return ""
		}
	}
	num := func(name string) (int64, bool) {
		switch v := item[name].(type) {
		case nil:
			return 0, false
		case *types.AttributeValueMemberN:
			n, perr := strconv.ParseInt(v.Value, 10, 64)
			if perr != nil && err == nil {
				err = fmt.Errorf("attribute %s: %w", name, perr)
			}
			return n, perr == nil
		default:
			if err == nil {
				err = fmt.Errorf("attribute %s: want N, got %T", name, v)
			}
			return 0, false
		}
	}
	r.ShardID = str(attrShardID)
	r.Owner = str(attrOwner)
	r.LeaseTimeout = str(attrLeaseTimeout)
	r.Checkpoint = str(attrCheckpoint)
	r.Parent = str(attrParent)
	r.Adjacent = str(attrAdjacent)
	r.CheckpointedAt = str(attrCheckpointedAt)
	r.Claim = str(attrClaim)
	r.ClaimedAt = str(attrClaimedAt)
	r.Counter, r.HasCounter = num(attrCounter)
	r.OwnerSwitches, _ = num(attrOwnerSwitches)
	if err != nil {
		return row{}, fmt.Errorf("lease row %q: %w", r.ShardID, err)
	}
	return r, nil
}

// version identifies the row's lease state for expiry: the counter, or for
// a vmware-go-kcl-v2 row without one, the fields its renewals change.
func (r row) version() string {
	if r.HasCounter {
		return "n:" + strconv.FormatInt(r.Counter, 10)
	}
	return "v:" + r.Owner + "\x00" + r.LeaseTimeout + "\x00" + r.Checkpoint
}

// expr accumulates expression attribute names and values. Every attribute
// goes through a #name so reserved words never bite.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
}

func newExpr() *expr {
	return &expr{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

func (e *expr) n(attr string) string {
	k := "#" + attr
	e.names[k] = attr
	return k
}

func (e *expr) s(v string) string { return e.v(&types.AttributeValueMemberS{Value: v}) }

func (e *expr) num(v int64) string {
	return e.v(&types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)})
}

func (e *expr) v(av types.AttributeValue) string {
	k := ":v" + strconv.Itoa(len(e.values))
	e.values[k] = av
	return k
}

// strIs matches attr == v, treating absent and "" alike.
func (e *expr) strIs(attr, v string) string {
	if v == "" {
		return "(attribute_not_exists(" + e.n(attr) + ") OR " + e.n(attr) + " = " + e.s("") + ")"
	}
	return e.n(attr) + " = " + e.s(v)
}

// versionIs pins the row to the version observed.
func (e *expr) versionIs(r row) string {
	if r.HasCounter {
		return e.n(attrCounter) + " = " + e.num(r.Counter)
	}
	return "attribute_not_exists(" + e.n(attrCounter) + ") AND " + e.strIs(attrLeaseTimeout, r.LeaseTimeout) +
		" AND " + e.strIs(attrCheckpoint, r.Checkpoint)
}

// heldBy is the fence of every write by the holder.
func (e *expr) heldBy(owner string, counter int64) string {
	return e.n(attrOwner) + " = " + e.s(owner) + " AND " + e.n(attrCounter) + " = " + e.num(counter)
}

// update renders "SET a = v, ... [REMOVE x, ...]".
type update struct {
	e      *expr
	sets   []string
	remove []string
}

func (u *update) set(attr, placeholder string) {
	u.sets = append(u.sets, u.e.n(attr)+" = "+placeholder)
}

func (u *update) del(attr string) { u.remove = append(u.remove, u.e.n(attr)) }

func (u *update) String() string {
	var b strings.Builder
	if len(u.sets) > 0 {
		b.WriteString("SET ")
		b.WriteString(strings.Join(u.sets, ", "))
	}
	if len(u.remove) > 0 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("REMOVE ")
		b.WriteString(strings.Join(u.remove, ", "))
	}
	return b.String()
}

func wallString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// compareSeq compares two Kinesis sequence numbers as unsigned decimal big
// integers without allocating: after dropping leading zeros the longer is
// larger, equal lengths compare bytewise. ok is false if either is not a
// non-empty string of digits.
func compareSeq(a, b string) (cmp int, ok bool) {
	if !isDigits(a) || !isDigits(b) {
		return 0, false
	}
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1, true
		}
		return 1, true
	}
	return strings.Compare(a, b), true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkAdvance decides whether a checkpoint may move from cur to want.
func checkAdvance(cur, want string) error {
	switch {
	case cur == ShardEnd && want == ShardEnd:
		return nil // idempotent
	case cur == ShardEnd:
		return ErrShardEnded
	case want == ShardEnd:
		return nil
	case !isDigits(want):
		return ErrInvalidSequence
	case cur == "":
		return nil
	}
	c, ok := compareSeq(want, cur)
	if !ok {
		// The stored value is not a sequence number (hand-edited row):
		// let the owner repair it rather than wedge the shard.
		return nil
	}
	if c < 0 {
		return ErrCheckpointBackwards
	}
	return nil
}
