package botdetect

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Profile items (table APP-results): pk "bot#profile#<shard id>", sk
// "chunk#000", "chunk#001", ...; chunk 0 says how many chunks are
// current, so leftovers of a larger earlier set are ignored.
const (
	KindProfile   = "profile"
	attrProfiles  = "profiles" // B: encoded profiles
	attrEventTime = "event_ms" // N: newest event time seen (unix ms)
)

func profilePK(shardID string) string { return resultName + "#profile#" + shardID }

func profileSK(n int) string { return fmt.Sprintf("chunk#%03d", n) }

// profileMeta is what chunk 0 carries besides profiles.
type profileMeta struct {
	eventMS     int64           // newest event time fed (unix ms)
	pos         window.Position // newest record fed
	sawSessions bool
}

const (
	attrSessions   = "sessions"   // BOOL: the shard's records carry session ids
	attrAdvertised = "advertised" // B: hashes of paths seen in referers
	advertisedSK   = "adv"
)

// profileItems encodes every profile, newest first, in chunks, and the
// set of advertised paths.
func profileItems(table, shardID string, ps *profiles, meta profileMeta, expires time.Time, buf []byte) ([]processors.Item, []byte) {
	list := ps.sortedForPersist()
	n := max(1, (len(list)+profileChunk-1)/profileChunk)
	pk := profilePK(shardID)
	items := make([]processors.Item, 0, n)
	for c := range n {
		lo, hi := c*profileChunk, min((c+1)*profileChunk, len(list))
		buf = appendProfiles(buf[:0], list[lo:hi])
		sk := profileSK(c)
		attrs := map[string]types.AttributeValue{
			window.AttrPK:        window.Str(pk),
			window.AttrSK:        window.Str(sk),
			window.AttrKind:      window.Str(KindProfile),
			window.AttrShard:     window.Str(shardID),
			window.AttrExpiresAt: window.Int(expires.Unix()),
			attrChunk:            window.Int(int64(c)),
			attrProfiles:         &types.AttributeValueMemberB{Value: slices.Clone(buf)},
		}
		if c == 0 {
			attrs[attrChunks] = window.Int(int64(n))
			attrs[attrEventTime] = window.Int(meta.eventMS)
			attrs[window.AttrPos] = window.Str(meta.pos.String())
			attrs[attrSessions] = window.Bool(meta.sawSessions)
		}
		items = append(items, processors.Item{Table: table, Key: pk + "|" + sk, Attrs: attrs})
	}
	hs := make([]uint64, 0, len(ps.advertised))
	for h := range ps.advertised {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	adv := make([]byte, 0, 8*len(hs))
	for _, h := range hs {
		adv = binary.LittleEndian.AppendUint64(adv, h)
	}
	items = append(items, processors.Item{Table: table, Key: pk + "|" + advertisedSK, Attrs: map[string]types.AttributeValue{
		window.AttrPK: window.Str(pk), window.AttrSK: window.Str(advertisedSK), window.AttrKind: window.Str(KindProfile),
		window.AttrShard: window.Str(shardID), window.AttrExpiresAt: window.Int(expires.Unix()),
		attrAdvertised: &types.AttributeValueMemberB{Value: adv},
	}})
	return items, buf
}

// restoreProfiles loads the profiles the previous lease owner persisted.
func restoreProfiles(ctx context.Context, store processors.Store, table, shardID string, ps *profiles) (profileMeta, error) {
	var meta profileMeta
	pk := profilePK(shardID)
	items, err := store.Query(ctx, table, window.AttrPK, pk, window.AttrSK, advertisedSK, "chunk#~")
	if err != nil {
		return meta, fmt.Errorf("load profiles: %w", err)
	}
	var chunks int64 = -1
	for _, it := range items {
		if sk, _ := window.GetStr(it, window.AttrSK); sk == advertisedSK {
			b, _ := it[attrAdvertised].(*types.AttributeValueMemberB)
			if b == nil || len(b.Value)%8 != 0 || len(b.Value) > 8*advertisedMax {
				return meta, fmt.Errorf("%w: %s %s: bad %s", window.ErrBadItem, pk, advertisedSK, attrAdvertised)
			}
			for i := 0; i < len(b.Value); i += 8 {
				ps.advertised[binary.LittleEndian.Uint64(b.Value[i:])] = struct{}{}
			}
			continue
		}
		if c, _ := window.GetInt(it, attrChunk); c == 0 {
			chunks, _ = window.GetInt(it, attrChunks)
			meta.eventMS, _ = window.GetInt(it, attrEventTime)
			meta.sawSessions, _ = window.GetBool(it, attrSessions)
			s, _ := window.GetStr(it, window.AttrPos)
			if meta.pos, err = window.ParsePosition(s); err != nil {
				return meta, fmt.Errorf("%s %s: %w", pk, profileSK(0), err)
			}
		}
	}
	for _, it := range items {
		if sk, _ := window.GetStr(it, window.AttrSK); sk == advertisedSK {
			continue
		}
		c, _ := window.GetInt(it, attrChunk)
		if c < 0 || c >= chunks {
			continue // no chunk 0, or a leftover
		}
		b, _ := it[attrProfiles].(*types.AttributeValueMemberB)
		if b == nil {
			return meta, fmt.Errorf("%w: %s %s: missing %s", window.ErrBadItem, pk, profileSK(int(c)), attrProfiles)
		}
		if err := decodeProfiles(b.Value, ps.load); err != nil {
			return meta, fmt.Errorf("%s %s: %w", pk, profileSK(int(c)), err)
		}
	}
	ps.dirty = false
	return meta, nil
}
