package botdetect

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Result name in partition keys: "bot#60s#2026-11-22T09:41:00Z".
const resultName = "bot"

// KindChunk marks the second and later chunks of a shard's partial (the
// first chunk is the window.KindPartial item and says how many exist).
const KindChunk = "partial-chunk"

// KindDelta marks a delta of an open window's partial: the IPs changed
// since the previous write, under the window's partition key + "#delta"
// (so global merges, which read the base chunks, never read deltas).
const KindDelta = "partial-delta"

// Attributes of botdetect items beyond window's common ones.
const (
	attrState       = "state"             // B: encoded IP states (partials)
	attrChunk       = "chunk"             // N: chunk number (chunks > 0)
	attrChunks      = "chunks"            // N: chunks of this shard's partial
	attrGen         = "gen"               // S: generation of a base (chunk 0) and of the deltas that apply to it
	attrSeq         = "seq"               // N: a delta's number within its generation (1, 2, ...)
	attrHosts       = "hosts"             // L of S: host table
	attrNames       = "ua_names"          // L of S: crawler-name table
	attrRequests    = "requests"          // N
	attrBotRequests = "bot_requests"      // N: requests with a bot UA
	attrLibRequests = "library_requests"  // N: requests with a library UA
	attrLibIPs      = "library_ips"       // N (global): IPs with library requests and no bot ones
	attrProfileIPs  = "profile_ips"       // N (global): IPs flagged by their profile
	attrOverflow    = "overflow_requests" // N: requests of untracked IPs
	attrIPs         = "ips"               // N: distinct IPs
	attrFinalShards = "final_shards"      // N (global): merged partials that were final
	attrBotShare    = "bot_share"         // N (global): bot_requests / requests
	attrFlaggedIPs  = "flagged_ips"       // N (global): all flagged IPs
	attrFlaggedReqs = "flagged_requests"  // N (global): their requests
	attrFlagged     = "flagged"           // L of M (global, older versions): the top max_report flagged IPs
	attrFlaggedZ    = "flagged_z"         // B (global): the same list as deflated JSON (5-8x fewer write units)
)

// chunkSK returns the sort key of chunk n (> 0) of shard's partial.
func chunkSK(shardID string, n int) string {
	return window.ShardSK(shardID) + "#" + fmt.Sprintf("%03d", n)
}

// partialItems returns the items of s's whole partial for window
// [start, end) (a base): chunk 0 (position, totals, tables and the
// generation gen its deltas name) and every later chunk.
func partialItems(table string, k window.Keys, shardID string, start, end time.Time, pos window.Position,
	final bool, expires time.Time, s *winState, gen string, buf []byte,
) ([]processors.Item, []byte) {
	pk := k.Window(start)
	n := s.chunks()
	items := make([]processors.Item, 0, n)
	for c := range n {
		lo, hi := c*chunkIPs, min((c+1)*chunkIPs, len(s.ips))
		buf = appendChunk(buf[:0], s.ips[lo:hi], s.stats[lo:hi])
		state := &types.AttributeValueMemberB{Value: window.Deflate(string(buf))}
		var attrs map[string]types.AttributeValue
		var sk string
		if c == 0 {
			sk = window.ShardSK(shardID)
			attrs = window.Header{PK: pk, SK: sk, Kind: window.KindPartial, Shard: shardID, Start: start, End: end,
				Pos: pos, Final: final, ExpiresAt: expires}.Attrs(11)
			attrs[attrChunks] = window.Int(int64(n))
			attrs[attrGen] = window.Str(gen)
			s.putTables(attrs)
		} else {
			sk = chunkSK(shardID, c)
			attrs = window.Header{PK: pk, SK: sk, Kind: KindChunk, Shard: shardID, Start: start, End: end,
				Final: final, ExpiresAt: expires}.Attrs(2)
			attrs[attrChunk] = window.Int(int64(c))
		}
		attrs[attrState+window.Zipped] = state
		items = append(items, processors.Item{Table: table, Key: pk + "|" + sk, Attrs: attrs})
	}
	return items, buf
}

// putTables sets the window-wide attributes a base's chunk 0 and every
// delta carry: totals and the host and crawler-name tables.
func (s *winState) putTables(attrs map[string]types.AttributeValue) {
	attrs[attrHosts] = strList(s.hosts.strs[1:])
	attrs[attrNames] = strList(s.names.strs[1:])
	attrs[attrRequests] = window.Int(s.totals.Requests)
	attrs[attrBotRequests] = window.Int(s.totals.BotRequests)
	attrs[attrLibRequests] = window.Int(s.totals.LibRequests)
	attrs[attrOverflow] = window.Int(s.totals.Overflow)
	attrs[attrIPs] = window.Int(int64(len(s.ips)))
}

// deltaPK is the partition key of a window's deltas.
func deltaPK(windowPK string) string { return windowPK + "#delta" }

// deltaSK is the sort key of delta seq of generation gen; the deltas of
// a generation sort between deltaPrefix and deltaPrefix+"~".
func deltaSK(shardID, gen string, seq int) string {
	return deltaPrefix(shardID, gen) + fmt.Sprintf("%06d", seq)
}

func deltaPrefix(shardID, gen string) string { return window.ShardSK(shardID) + "#" + gen + "#" }

// deltaItem returns delta seq of s's base gen for window [start, end):
// position, totals, tables and the IPs touched since the last write.
func deltaItem(table string, k window.Keys, shardID string, start, end time.Time, pos window.Position,
	expires time.Time, s *winState, gen string, seq int, buf []byte,
) (processors.Item, []byte) {
	pk, sk := deltaPK(k.Window(start)), deltaSK(shardID, gen, seq)
	attrs := window.Header{PK: pk, SK: sk, Kind: KindDelta, Shard: shardID, Start: start, End: end,
		Pos: pos, ExpiresAt: expires}.Attrs(12)
	attrs[attrGen] = window.Str(gen)
	attrs[attrSeq] = window.Int(int64(seq))
	s.putTables(attrs)
	ips := make([]string, len(s.touched))
	stats := make([]ipStat, len(s.touched))
	for j, i := range s.touched {
		ips[j], stats[j] = s.ips[i], s.stats[i]
	}
	buf = appendChunk(buf[:0], ips, stats)
	attrs[attrState+window.Zipped] = &types.AttributeValueMemberB{Value: window.Deflate(string(buf))}
	return processors.Item{Table: table, Key: pk + "|" + sk, Attrs: attrs}, buf
}

// stateBytes returns the deflated state bytes of items.
func stateBytes(items ...processors.Item) int {
	n := 0
	for _, it := range items {
		if b, ok := it.Attrs[attrState+window.Zipped].(*types.AttributeValueMemberB); ok {
			n += len(b.Value)
		}
	}
	return n
}

func strList(ss []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(ss))
	for i, s := range ss {
		l[i] = window.Str(s)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func readStrList(item map[string]types.AttributeValue, name string) []string {
	l, _ := item[name].(*types.AttributeValueMemberL)
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(l.Value))
	for _, v := range l.Value {
		s, _ := v.(*types.AttributeValueMemberS)
		if s == nil {
			out = append(out, "")
			continue
		}
		out = append(out, s.Value)
	}
	return out
}

// shardPartial is one shard's decoded partial for one window.
type shardPartial struct {
	header window.Header
	totals totals
	chunks int
	gen    string
	hosts  []string // index 0 is ""
	names  []string
	ips    map[string]ipStat
	order  []string // ips in chunk order
}

// readTables reads what putTables wrote.
func (p *shardPartial) readTables(it map[string]types.AttributeValue) {
	p.totals.Requests, _ = window.GetInt(it, attrRequests)
	p.totals.BotRequests, _ = window.GetInt(it, attrBotRequests)
	p.totals.LibRequests, _ = window.GetInt(it, attrLibRequests)
	p.totals.Overflow, _ = window.GetInt(it, attrOverflow)
	p.hosts = append([]string{""}, readStrList(it, attrHosts)...)
	p.names = append([]string{""}, readStrList(it, attrNames)...)
}

// decodePartials decodes the partial items of one window (chunk 0 and
// later chunks of any number of shards, and deltas), by shard id. Chunks
// beyond a shard's current chunk count are leftovers and ignored, and so
// are deltas of another generation than the shard's base: a later base
// replaced them. A base's deltas apply in order, each carrying the
// position, totals and tables as of its write.
func decodePartials(items []map[string]types.AttributeValue) (map[string]*shardPartial, error) {
	out := map[string]*shardPartial{}
	// Chunk 0 first: it holds the tables the other chunks index.
	for _, it := range items {
		kind, _ := window.GetStr(it, window.AttrKind)
		if kind != window.KindPartial {
			continue
		}
		h, err := window.ParseHeader(it)
		if err != nil {
			return nil, err
		}
		p := &shardPartial{header: h, ips: map[string]ipStat{}}
		n, _ := window.GetInt(it, attrChunks)
		p.chunks = int(n)
		p.gen, _ = window.GetStr(it, attrGen)
		p.readTables(it)
		if err := p.addChunk(it); err != nil {
			return nil, fmt.Errorf("%s %s: %w", h.PK, h.SK, err)
		}
		out[h.Shard] = p
	}
	for _, it := range items {
		kind, _ := window.GetStr(it, window.AttrKind)
		if kind != KindChunk {
			continue
		}
		shard, _ := window.GetStr(it, window.AttrShard)
		c, _ := window.GetInt(it, attrChunk)
		p := out[shard]
		if p == nil || c <= 0 || int(c) >= p.chunks {
			continue
		}
		if err := p.addChunk(it); err != nil {
			sk, _ := window.GetStr(it, window.AttrSK)
			return nil, fmt.Errorf("%s: %w", sk, err)
		}
	}
	var deltas []map[string]types.AttributeValue
	for _, it := range items {
		kind, _ := window.GetStr(it, window.AttrKind)
		shard, _ := window.GetStr(it, window.AttrShard)
		gen, _ := window.GetStr(it, attrGen)
		if p := out[shard]; kind == KindDelta && p != nil && p.gen != "" && gen == p.gen {
			deltas = append(deltas, it)
		}
	}
	slices.SortFunc(deltas, func(a, b map[string]types.AttributeValue) int {
		x, _ := window.GetInt(a, attrSeq)
		y, _ := window.GetInt(b, attrSeq)
		return cmp.Compare(x, y)
	})
	for _, it := range deltas {
		h, err := window.ParseHeader(it)
		if err != nil {
			return nil, err
		}
		p := out[h.Shard]
		p.header.Pos = h.Pos
		p.readTables(it)
		if err := p.addChunk(it); err != nil {
			return nil, fmt.Errorf("%s %s: %w", h.PK, h.SK, err)
		}
	}
	return out, nil
}

func (p *shardPartial) addChunk(it map[string]types.AttributeValue) error {
	state, err := chunkState(it)
	if err != nil {
		return err
	}
	return decodeChunk(state, func(ip string, st ipStat) {
		if _, dup := p.ips[ip]; !dup {
			p.order = append(p.order, ip)
		}
		p.ips[ip] = st
	})
}

// chunkState returns a chunk's encoded IP states, stored deflated
// (state_z) or, by earlier versions, as is (state).
func chunkState(it map[string]types.AttributeValue) ([]byte, error) {
	if z, ok := it[attrState+window.Zipped].(*types.AttributeValueMemberB); ok {
		s, err := window.Inflate(z.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", window.ErrBadItem, attrState+window.Zipped, err)
		}
		return []byte(s), nil
	}
	b, _ := it[attrState].(*types.AttributeValueMemberB)
	if b == nil {
		return nil, fmt.Errorf("%w: missing %s", window.ErrBadItem, attrState)
	}
	return b.Value, nil
}

// restoreState rebuilds a window's in-memory state from a shard partial.
// Chunk assignment follows the partial's order, so later writes rewrite
// the same chunks.
func restoreState(p *shardPartial) *winState {
	s := newWinState()
	s.totals = p.totals
	s.hosts.load(p.hosts[1:])
	s.names.load(p.names[1:])
	for _, ip := range p.order {
		st := p.ips[ip]
		// Table indexes stay valid: the tables were rebuilt in order.
		s.index[ip] = int32(len(s.ips))
		s.ips = append(s.ips, ip)
		s.stats = append(s.stats, st)
	}
	s.seen = make([]bool, len(s.ips))
	return s
}

// FlaggedIP is one IP flagged in a window.
type FlaggedIP struct {
	IP string
	// Reasons are "ua:<source>:<rule>" (the User-Agent classifier's
	// reason, e.g. "ua:crawlerdetect:AhrefsBot"), "rate", "robots",
	// "crawl" and "profile:<signal>" (see README).
	Reasons     []string
	Requests    int64
	Bytes       int64
	BotRequests int64 // requests with a bot User-Agent
	LibRequests int64 // requests with a library User-Agent
	// Score is the highest profile score in the window (0-1 and above;
	// the profile flags at profile.threshold).
	Score float64
	Host  string // first virtual host or CloudFront edge seen
	UA    string // classifier reason of the first bot or library User-Agent ("" if none)
}

// Result is the fleet-wide bot detection result of one window.
type Result struct {
	Start, End time.Time
	// Shards is the number of shard partials merged, FinalShards how many
	// of them were final. The result is complete once every shard that
	// had traffic in the window has finalised it.
	Shards, FinalShards int
	Requests            int64
	BotRequests         int64 // requests with a bot User-Agent
	LibRequests         int64 // requests with a library User-Agent (not bots)
	Overflow            int64 // requests of IPs beyond max_ips
	IPs                 int   // distinct IPs
	// LibraryIPs counts IPs with library requests and no bot requests;
	// ProfileIPs the flagged IPs with a profile reason.
	LibraryIPs, ProfileIPs int
	// FlaggedIPs and FlaggedRequests count every flagged IP; Flagged lists
	// the most active ones (requests desc, then IP).
	FlaggedIPs      int
	FlaggedRequests int64
	Flagged         []FlaggedIP
}

// LibraryShare returns LibRequests / Requests (0 when there were none).
func (r Result) LibraryShare() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.LibRequests) / float64(r.Requests)
}

// BotShare returns BotRequests / Requests (0 when there were none).
func (r Result) BotShare() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.BotRequests) / float64(r.Requests)
}

// Merge combines the shard partial items of one window (as read from the
// results table: every item of the window's partition key except the
// global one) into the fleet-wide result, flagging IPs by sig over their
// summed counters. maxReport bounds Result.Flagged (<= 0: no bound).
// `consumer query` uses it to show windows still open.
func Merge(sig Signals, maxReport int, items []map[string]types.AttributeValue) (Result, error) {
	parts, err := decodePartials(items)
	if err != nil {
		return Result{}, err
	}
	var r Result
	type merged struct {
		ipStat
		host, ua string
	}
	all := map[string]*merged{}
	shards := make([]string, 0, len(parts))
	for id := range parts {
		shards = append(shards, id)
	}
	slices.Sort(shards) // deterministic host/ua choice
	for _, id := range shards {
		p := parts[id]
		r.Shards++
		if p.header.Final {
			r.FinalShards++
		}
		if r.Start.IsZero() {
			r.Start, r.End = p.header.Start, p.header.End
		}
		r.Requests += p.totals.Requests
		r.BotRequests += p.totals.BotRequests
		r.LibRequests += p.totals.LibRequests
		r.Overflow += p.totals.Overflow
		for _, ip := range p.order {
			st := p.ips[ip]
			m := all[ip]
			if m == nil {
				m = &merged{}
				all[ip] = m
			}
			m.Requests += st.Requests
			m.Bytes = satAdd(m.Bytes, st.Bytes)
			m.BotRequests += st.BotRequests
			m.LibRequests += st.LibRequests
			m.Assets += st.Assets
			m.Referred += st.Referred
			m.PScore = max(m.PScore, st.PScore)
			m.PSignals |= st.PSignals
			m.Robots = m.Robots || st.Robots
			m.NoRef = m.NoRef || st.NoRef
			m.Paths.merge(st.Paths)
			if m.host == "" && int(st.Host) < len(p.hosts) {
				m.host = p.hosts[st.Host]
			}
			if m.ua == "" && int(st.UA) < len(p.names) {
				m.ua = p.names[st.UA]
			}
		}
	}
	r.IPs = len(all)
	for ip, m := range all {
		if m.LibRequests > 0 && m.BotRequests == 0 {
			r.LibraryIPs++
		}
		reasons := sig.reasons(&m.ipStat, m.ua)
		if len(reasons) == 0 {
			continue
		}
		r.FlaggedIPs++
		if m.PSignals != 0 {
			r.ProfileIPs++
		}
		r.FlaggedRequests += m.Requests
		r.Flagged = append(r.Flagged, FlaggedIP{IP: ip, Reasons: reasons, Requests: m.Requests, Bytes: m.Bytes,
			BotRequests: m.BotRequests, LibRequests: m.LibRequests, Score: float64(m.PScore) / 100, Host: m.host, UA: m.ua})
	}
	slices.SortFunc(r.Flagged, func(a, b FlaggedIP) int {
		if c := cmp.Compare(b.Requests, a.Requests); c != 0 {
			return c
		}
		return cmp.Compare(a.IP, b.IP)
	})
	if maxReport > 0 && len(r.Flagged) > maxReport {
		r.Flagged = r.Flagged[:maxReport]
	}
	return r, nil
}

// reasons returns why st is flagged (nil if it is not). A library
// User-Agent alone does not flag: libraries are their own class.
func (sig Signals) reasons(st *ipStat, ua string) []string {
	var rs []string
	if st.BotRequests > 0 {
		if ua == "" {
			ua = "unknown"
		}
		rs = append(rs, "ua:"+ua)
	}
	// The NAT guard: a burst of mostly assets with referers is browsers
	// (often many behind one address), not a bot, whatever its rate.
	if sig.RateRequests > 0 && st.Requests >= sig.RateRequests &&
		!humanLike(float64(st.Assets), float64(st.Referred), float64(st.Requests)) {
		rs = append(rs, "rate")
	}
	if sig.Robots && st.Robots {
		rs = append(rs, "robots")
	}
	if sig.CrawlPaths > 0 && st.NoRef && st.Paths.estimate() >= float64(sig.CrawlPaths) {
		rs = append(rs, "crawl")
	}
	return profileReasons(rs, st.PSignals)
}

// globalItem returns r as the window's global item.
func globalItem(table string, k window.Keys, r Result, expires time.Time) processors.Item {
	pk := k.Window(r.Start)
	attrs := window.Header{PK: pk, SK: window.GlobalSK, Kind: window.KindGlobal, Start: r.Start, End: r.End,
		Final: r.Shards > 0 && r.FinalShards == r.Shards, ExpiresAt: expires}.Attrs(13)
	attrs[window.AttrMerged] = window.Int(int64(r.Shards))
	attrs[attrFinalShards] = window.Int(int64(r.FinalShards))
	attrs[attrRequests] = window.Int(r.Requests)
	attrs[attrBotRequests] = window.Int(r.BotRequests)
	attrs[attrLibRequests] = window.Int(r.LibRequests)
	attrs[attrLibIPs] = window.Int(int64(r.LibraryIPs))
	attrs[attrProfileIPs] = window.Int(int64(r.ProfileIPs))
	attrs[attrBotShare] = window.Float(r.BotShare())
	attrs[attrOverflow] = window.Int(r.Overflow)
	attrs[attrIPs] = window.Int(int64(r.IPs))
	attrs[attrFlaggedIPs] = window.Int(int64(r.FlaggedIPs))
	attrs[attrFlaggedReqs] = window.Int(r.FlaggedRequests)
	if len(r.Flagged) > 0 {
		attrs[attrFlaggedZ] = &types.AttributeValueMemberB{Value: encodeFlagged(r.Flagged)}
	}
	return processors.Item{Table: table, Key: pk + "|" + window.GlobalSK, Attrs: attrs}
}

// ParseGlobal decodes a window's global item (as written by the
// processor) into a Result.
func ParseGlobal(item map[string]types.AttributeValue) (Result, error) {
	h, err := window.ParseHeader(item)
	if err != nil {
		return Result{}, err
	}
	r := Result{Start: h.Start, End: h.End}
	n, _ := window.GetInt(item, window.AttrMerged)
	r.Shards = int(n)
	n, _ = window.GetInt(item, attrFinalShards)
	r.FinalShards = int(n)
	r.Requests, _ = window.GetInt(item, attrRequests)
	r.BotRequests, _ = window.GetInt(item, attrBotRequests)
	r.LibRequests, _ = window.GetInt(item, attrLibRequests)
	n, _ = window.GetInt(item, attrLibIPs)
	r.LibraryIPs = int(n)
	n, _ = window.GetInt(item, attrProfileIPs)
	r.ProfileIPs = int(n)
	r.Overflow, _ = window.GetInt(item, attrOverflow)
	n, _ = window.GetInt(item, attrIPs)
	r.IPs = int(n)
	n, _ = window.GetInt(item, attrFlaggedIPs)
	r.FlaggedIPs = int(n)
	r.FlaggedRequests, _ = window.GetInt(item, attrFlaggedReqs)
	if b, ok := item[attrFlaggedZ].(*types.AttributeValueMemberB); ok {
		var err error
		r.Flagged, err = decodeFlagged(b.Value)
		return r, err
	}
	l, _ := item[attrFlagged].(*types.AttributeValueMemberL)
	if l == nil {
		return r, nil
	}
	for _, v := range l.Value {
		m, _ := v.(*types.AttributeValueMemberM)
		if m == nil {
			return r, fmt.Errorf("%w: %s entry", window.ErrBadItem, attrFlagged)
		}
		var f FlaggedIP
		f.IP, _ = window.GetStr(m.Value, "ip")
		f.Reasons = readStrList(m.Value, "reasons")
		f.Requests, _ = window.GetInt(m.Value, "requests")
		f.Bytes, _ = window.GetInt(m.Value, "bytes")
		f.BotRequests, _ = window.GetInt(m.Value, "bot_requests")
		f.LibRequests, _ = window.GetInt(m.Value, "library_requests")
		f.Score, _ = window.GetFloat(m.Value, "score")
		f.Host, _ = window.GetStr(m.Value, "host")
		f.UA, _ = window.GetStr(m.Value, "ua")
		r.Flagged = append(r.Flagged, f)
	}
	return r, nil
}

// flaggedJSON is a FlaggedIP in a global item's flagged_z list.
type flaggedJSON struct {
	IP          string   `json:"ip"`
	Reasons     []string `json:"reasons"`
	Requests    int64    `json:"requests"`
	Bytes       int64    `json:"bytes"`
	BotRequests int64    `json:"bot_requests"`
	LibRequests int64    `json:"library_requests,omitempty"`
	Score       float64  `json:"score,omitempty"`
	Host        string   `json:"host,omitempty"`
	UA          string   `json:"ua,omitempty"`
}

// encodeFlagged returns fs as deflated JSON: a global item lists up to
// max_report IPs (500: ~35 KB as DynamoDB maps, ~5 KB deflated), written
// by every shard whose merge changed it.
func encodeFlagged(fs []FlaggedIP) []byte {
	out := make([]flaggedJSON, len(fs))
	for i, f := range fs {
		out[i] = flaggedJSON(f)
	}
	b, err := json.Marshal(out)
	if err != nil { // plain strings and numbers: cannot fail
		return nil
	}
	return window.Deflate(string(b))
}

func decodeFlagged(b []byte) ([]FlaggedIP, error) {
	s, err := window.Inflate(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", window.ErrBadItem, attrFlaggedZ, err)
	}
	var in []flaggedJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", window.ErrBadItem, attrFlaggedZ, err)
	}
	out := make([]FlaggedIP, len(in))
	for i, f := range in {
		out[i] = FlaggedIP(f)
	}
	return out, nil
}

// keysFor returns the partition keys of botdetect results for windows of
// size.
func keysFor(size time.Duration) window.Keys { return window.NewKeys(resultName, size) }
