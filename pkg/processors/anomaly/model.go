package anomaly

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/rcf"
)

// acc is one traffic second of one host, not yet scored.
type acc struct {
	Sec      int64 `json:"s"` // unix second
	Requests int64 `json:"r"`
	Bytes    int64 `json:"b"`
	E5xx     int64 `json:"e"`
	Bots     int64 `json:"o"`
}

// model is the per-key state that lives with the shard: the forest, the
// open traffic seconds and the alarm suppression.
type model struct {
	key     string
	ordinal int // creation order on this lease (metric dimensions)
	forest  *rcf.Forest
	// skipTo: records at or below it were learned by the snapshot this
	// model was restored from (a replay after a crash).
	skipTo    window.Position
	pending   []acc     // traffic: open seconds, ascending
	lastAlarm time.Time // event time of the key's last alarm on this shard
	dirty     bool      // changed since the last snapshot
	maxScore  float64   // since the last flush (metric)
	maxAt     time.Time
}

// keySeed derives a model's seed from the configured seed and its key, so
// a key's scores do not depend on which other keys the shard saw first.
func keySeed(seed uint64, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return seed ^ h.Sum64()
}

// Snapshot items (results table): partition INSTANCE#model#SHARD, one
// item per chunk: sort key "KEY#NNN". Chunk 0 also holds the model's
// position, open seconds and last alarm.
const (
	chunkBytes  = 300 << 10 // data per item, below DynamoDB's 400 KB
	maxChunks   = 64
	attrKey     = "key"
	attrChunk   = "chunk"
	attrChunks  = "chunks"
	attrData    = "data"
	attrPending = "pending"
	attrAlarmAt = "last_alarm"
	attrClosed  = "closed_sec" // traffic: first second not yet scored
)

func modelPK(instance, shardID string) string { return instance + "#model#" + shardID }

func chunkSK(key string, i int) string { return key + "#" + fmt.Sprintf("%03d", i) }

// snapshotItems encodes m as its chunk items.
func (p *proc) snapshotItems(m *model, pos window.Position, now time.Time) ([]processors.Item, error) {
	data, err := m.forest.MarshalBinary()
	if err != nil {
		return nil, err
	}
	n := max(1, (len(data)+chunkBytes-1)/chunkBytes)
	if n > maxChunks {
		return nil, fmt.Errorf("model %q: snapshot of %d bytes exceeds %d chunks", m.key, len(data), maxChunks)
	}
	pk := modelPK(p.name, p.env.Shard.ShardID)
	expires := window.Int(now.Add(p.retention).Unix())
	out := make([]processors.Item, 0, n)
	for i := range n {
		sk := chunkSK(m.key, i)
		attrs := map[string]types.AttributeValue{
			window.AttrPK:        window.Str(pk),
			window.AttrSK:        window.Str(sk),
			window.AttrShard:     window.Str(p.env.Shard.ShardID),
			window.AttrPos:       window.Str(pos.String()),
			attrKey:              window.Str(m.key),
			attrChunk:            window.Int(int64(i)),
			attrChunks:           window.Int(int64(n)),
			attrData:             &types.AttributeValueMemberB{Value: data[i*chunkBytes : min(len(data), (i+1)*chunkBytes)]},
			window.AttrExpiresAt: expires,
		}
		if i == 0 {
			if len(m.pending) > 0 {
				b, err := json.Marshal(m.pending)
				if err != nil {
					return nil, err
				}
				attrs[attrPending] = window.Str(string(b))
			}
			if p.cfg.Input == InputTraffic && !p.watermark.IsZero() {
				attrs[window.AttrWatermark] = window.Int(p.watermark.UnixNano())
				attrs[attrClosed] = window.Int(p.closedSec)
			}
			if !m.lastAlarm.IsZero() {
				attrs[attrAlarmAt] = window.Int(m.lastAlarm.Unix())
			}
		}
		out = append(out, processors.Item{Table: p.table, Key: pk + "|" + sk, Attrs: attrs})
	}
	return out, nil
}

// restoreModels reads this shard's snapshots. A key whose chunks do not
// all carry the same position (a crash while writing them) or do not
// decode starts cold; the problem is logged, not fatal.
func (p *proc) restoreModels(items []map[string]types.AttributeValue) []string {
	type parts struct {
		pos     string
		chunks  [][]byte
		pending string
		alarm   int64
		wm, cl  int64
		bad     bool
	}
	byKey := map[string]*parts{}
	var problems []string
	for _, it := range items {
		key, _ := window.GetStr(it, attrKey)
		pos, _ := window.GetStr(it, window.AttrPos)
		i, ok1 := window.GetInt(it, attrChunk)
		n, ok2 := window.GetInt(it, attrChunks)
		b, ok3 := it[attrData].(*types.AttributeValueMemberB)
		if key == "" || !ok1 || !ok2 || !ok3 || n < 1 || n > maxChunks || i < 0 {
			problems = append(problems, "malformed snapshot item")
			continue
		}
		if i >= n {
			continue // left over from a larger, older snapshot
		}
		ps := byKey[key]
		if ps == nil {
			ps = &parts{pos: pos, chunks: make([][]byte, n)}
			byKey[key] = ps
		}
		if ps.pos != pos || len(ps.chunks) != int(n) {
			ps.bad = true
			continue
		}
		ps.chunks[i] = b.Value
		if i == 0 {
			ps.pending, _ = window.GetStr(it, attrPending)
			ps.alarm, _ = window.GetInt(it, attrAlarmAt)
			ps.wm, _ = window.GetInt(it, window.AttrWatermark)
			ps.cl, _ = window.GetInt(it, attrClosed)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		ps := byKey[key]
		if ps.bad || slices.ContainsFunc(ps.chunks, func(c []byte) bool { return c == nil }) {
			problems = append(problems, "model "+strconv.Quote(key)+": incomplete snapshot, starts cold")
			continue
		}
		if len(p.models) >= p.cfg.MaxKeys {
			problems = append(problems, "model "+strconv.Quote(key)+": over max_keys, dropped")
			continue
		}
		f, err := rcf.Restore(slices.Concat(ps.chunks...))
		if err == nil && !sameForest(f.Config(), p.cfg.rcfConfig(keySeed(p.cfg.Forest.Seed, key))) {
			err = fmt.Errorf("forest settings changed")
		}
		pos, perr := window.ParsePosition(ps.pos)
		if err == nil {
			err = perr
		}
		m := &model{key: key, ordinal: len(p.models), forest: f, skipTo: pos}
		if err == nil && ps.pending != "" {
			err = json.Unmarshal([]byte(ps.pending), &m.pending)
		}
		if err != nil {
			problems = append(problems, "model "+strconv.Quote(key)+": "+err.Error()+", starts cold")
			continue
		}
		if ps.alarm != 0 {
			m.lastAlarm = time.Unix(ps.alarm, 0).UTC()
		}
		if ps.wm != 0 {
			if wm := time.Unix(0, ps.wm).UTC(); wm.After(p.watermark) {
				p.watermark = wm
			}
			p.closedSec = max(p.closedSec, ps.cl)
		}
		p.models[key] = m
		p.order = append(p.order, m)
	}
	return problems
}

func newForest(cfg Config, key string) (*rcf.Forest, error) {
	return rcf.New(cfg.rcfConfig(keySeed(cfg.Forest.Seed, key)))
}

// sameForest compares the settings that make a snapshot usable (not the
// seed, which Restore keeps from the snapshot).
func sameForest(a, b rcf.Config) bool {
	a.Seed, b.Seed = 0, 0
	return a == b
}

// cleanKey makes a record key usable as a DynamoDB string and a sort key
// prefix: valid UTF-8, "-" for empty. Keys over maxKeyBytes return "".
func cleanKey(k string) string {
	if k == "" {
		return "-"
	}
	if len(k) > maxKeyBytes {
		return ""
	}
	return strings.ToValidUTF8(k, "?")
}
