package orderflood

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Alarm describes one order flood: the SNS message body (JSON) and the
// details of its alarm-history item.
type Alarm struct {
	// ID is the alarm-history partition key: the configured name, plus
	// "#customer#<id>" or "#ip#<ip>" in the keyed modes.
	ID   string `json:"alarm"`
	Name string `json:"name"`
	Mode string `json:"mode"`
	Key  string `json:"key,omitempty"`
	// Period is the alarm's time (the history sort key, to the second):
	// the time of the order that breached. The alarms of an ID follow
	// deterministically from the orders, so every worker that evaluates
	// a breach finds the same time, and one conditional put elects the
	// one that publishes it.
	Period time.Time `json:"period"`
	// Time is the breaching order's time to the millisecond.
	Time time.Time `json:"time"`
	// The sliding window that breached: [WindowStart, WindowEnd], both
	// ends included (WindowEnd = Time).
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	// Orders is the sliding count at Time (order lines, invoices or
	// hits, per Unit).
	Orders    int64  `json:"orders"`
	Unit      string `json:"unit"`
	Threshold int64  `json:"threshold"`
	// TriggerCount is the breaches (distinct order times whose count
	// reached the threshold) in [Time - trigger_window, Time], this one
	// and the suppressed ones included.
	TriggerCount int64 `json:"trigger_count"`
	// Approximate is set when a second held more than max_keys invoices
	// or keys: the count may then be too high (invoices) or low (keys).
	Approximate bool   `json:"approximate,omitempty"`
	Severity    string `json:"severity"`
	// Text is the notification's short form (at most 140 characters),
	// what SMS and email subscribers get.
	Text string `json:"text"`
	// Top lists over the window, from every shard's partial counts.
	TopCustomers []Top `json:"top_customers,omitempty"`
	TopCountries []Top `json:"top_countries,omitempty"`
	TopIPs       []Top `json:"top_ips,omitempty"`
	// Event times of the first and last order in the window.
	FirstOrder time.Time `json:"first_order"`
	LastOrder  time.Time `json:"last_order"`
	// Shards that had orders in the window.
	Shards int    `json:"shards"`
	Stream string `json:"stream,omitempty"`
	// Who raised it and when (clock time).
	RaisedByShard  string    `json:"raised_by_shard"`
	RaisedByWorker string    `json:"raised_by_worker,omitempty"`
	DetectedAt     time.Time `json:"detected_at"`
	// DedupID is the same for every message of one (ID, Period): the SNS
	// FIFO MessageDeduplicationId and MessageGroupId, and the dedup_id
	// attribute subscribers of a standard topic drop repeats by.
	DedupID string `json:"dedup_id"`
}

// dedupID derives the de-duplication id of an alarm period: a hash, since
// alarm IDs may hold any key text and SNS allows 128 characters of ASCII
// letters, digits and punctuation.
func dedupID(id string, period time.Time) string {
	sum := sha256.Sum256([]byte(id + "#" + periodKey(period)))
	return "orderflood-" + hex.EncodeToString(sum[:20])
}

// isFIFO reports whether topic is an SNS FIFO topic (its name ends in
// ".fifo").
func isFIFO(topic string) bool { return strings.HasSuffix(topic, ".fifo") }

// Top is one entry of a top list.
type Top struct {
	Key    string `json:"key"`
	Orders int64  `json:"orders"`
}

// topOf returns the n largest counts, ties by key.
func topOf(c map[string]int64, n int) []Top {
	out := make([]Top, 0, len(c))
	for k, v := range c {
		out = append(out, Top{k, v})
	}
	slices.SortFunc(out, func(a, b Top) int {
		if c := cmp.Compare(b.Orders, a.Orders); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if len(out) > n {
		out = out[:n]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Alarm-history attributes (table APP-alarms, key alarm + period).
const (
	attrAlarm       = "alarm"
	attrPeriod      = "period"
	attrPublished   = "published"    // BOOL: the SNS message went out (state published)
	attrPublishedAt = "published_at" // S: clock time of the confirmation
	attrBody        = "body"         // S: the message body (JSON)
	attrDone        = "done"         // BOOL (pending markers)
	attrState       = "state"        // S: claimed, publishing or published
	attrClaim       = "claim"        // S: token of the lease that holds the claim
	attrDedupID     = "dedup_id"     // S: Alarm.DedupID
	attrStateAt     = "state_at"     // S: clock time of the last state change
)

// Alarm-history states. An item is written claimed (the conditional put
// that elects the publisher), moves to publishing just before the SNS
// publish and to published right after it returns.
const (
	stateClaimed    = "claimed"
	statePublishing = "publishing"
	statePublished  = "published"
)

// stateOf returns the state of a history item; items written before
// states existed are published or (ambiguous) publishing.
func stateOf(it map[string]types.AttributeValue) string {
	if s, ok := window.GetStr(it, attrState); ok && s != "" {
		return s
	}
	if published, _ := window.GetBool(it, attrPublished); published {
		return statePublished
	}
	return statePublishing
}

func periodKey(t time.Time) string { return window.FormatTime(t) }

// historyItem returns a's alarm-history item.
func historyItem(a *Alarm, body []byte, state, claim string, now, expires time.Time) map[string]types.AttributeValue {
	published := state == statePublished
	m := map[string]types.AttributeValue{
		attrAlarm:              window.Str(a.ID),
		attrPeriod:             window.Str(periodKey(a.Period)),
		"name":                 window.Str(a.Name),
		"mode":                 window.Str(a.Mode),
		window.AttrWindowStart: window.Str(window.FormatTime(a.WindowStart)),
		window.AttrWindowEnd:   window.Str(window.FormatTime(a.WindowEnd)),
		"orders":               window.Int(a.Orders),
		"trigger_count":        window.Int(a.TriggerCount),
		"text":                 window.Str(a.Text),
		"threshold":            window.Int(a.Threshold),
		"severity":             window.Str(a.Severity),
		"shards":               window.Int(int64(a.Shards)),
		"raised_by_shard":      window.Str(a.RaisedByShard),
		"detected_at":          window.Str(a.DetectedAt.UTC().Format(time.RFC3339Nano)),
		attrPublished:          window.Bool(published),
		attrState:              window.Str(state),
		attrClaim:              window.Str(claim),
		attrDedupID:            window.Str(a.DedupID),
		attrStateAt:            window.Str(now.UTC().Format(time.RFC3339Nano)),
		attrBody:               window.Str(string(body)),
	}
	if !expires.IsZero() {
		m[window.AttrExpiresAt] = window.Int(expires.Unix())
	}
	if a.Key != "" {
		m["key"] = window.Str(a.Key)
	}
	if a.RaisedByWorker != "" {
		m["raised_by_worker"] = window.Str(a.RaisedByWorker)
	}
	if !a.FirstOrder.IsZero() {
		m["first_order"] = window.Str(a.FirstOrder.UTC().Format(time.RFC3339Nano))
		m["last_order"] = window.Str(a.LastOrder.UTC().Format(time.RFC3339Nano))
	}
	for name, l := range map[string][]Top{"top_customers": a.TopCustomers, "top_countries": a.TopCountries, "top_ips": a.TopIPs} {
		if len(l) == 0 {
			continue
		}
		v := make([]types.AttributeValue, len(l))
		for i, t := range l {
			v[i] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"key": window.Str(t.Key), "orders": window.Int(t.Orders),
			}}
		}
		m[name] = &types.AttributeValueMemberL{Value: v}
	}
	if published {
		m[attrPublishedAt] = window.Str(now.UTC().Format(time.RFC3339Nano))
	}
	return m
}

// pendingPK is the partition of a shard's alarm markers in the results
// table: an alarm this shard is raising, until its message is confirmed.
func pendingPK(name, shardID string) string { return "orders#" + name + "#pending#" + shardID }

func markerSK(a *Alarm) string { return a.ID + "#" + periodKey(a.Period) }

func markerItem(table, name, shardID string, a *Alarm, body []byte, done bool, expires time.Time) processors.Item {
	pk, sk := pendingPK(name, shardID), markerSK(a)
	return processors.Item{Table: table, Key: pk + "|" + sk, Attrs: map[string]types.AttributeValue{
		window.AttrPK:        window.Str(pk),
		window.AttrSK:        window.Str(sk),
		window.AttrShard:     window.Str(shardID),
		attrAlarm:            window.Str(a.ID),
		attrPeriod:           window.Str(periodKey(a.Period)),
		attrBody:             window.Str(string(body)),
		attrDone:             window.Bool(done),
		window.AttrExpiresAt: window.Int(expires.Unix()),
	}}
}

// parseMarker returns the alarm of a pending marker.
func parseMarker(item map[string]types.AttributeValue) (*Alarm, []byte, bool, error) {
	done, _ := window.GetBool(item, attrDone)
	body, ok := window.GetStr(item, attrBody)
	if !ok {
		return nil, nil, done, fmt.Errorf("%w: marker without %s", window.ErrBadItem, attrBody)
	}
	var a Alarm
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		return nil, nil, done, fmt.Errorf("%w: marker body: %v", window.ErrBadItem, err)
	}
	return &a, []byte(body), done, nil
}

// maxText is the longest short form: one SMS of ASCII text.
const maxText = 140

// shortText renders a's short form, at most maxText printable ASCII
// characters: "order-flood: 42 order lines in 15 s (threshold 30) at
// 2010-12-01 12:04:05 UTC, 3 triggers in the last minute".
func shortText(a *Alarm, window, triggerWindow time.Duration) string {
	who := a.Name
	if a.Key != "" {
		who += " " + a.Mode + " " + a.Key
	}
	approx := ""
	if a.Approximate {
		approx = "~"
	}
	tail := fmt.Sprintf(": %s%d %s in %s (threshold %d) at %s UTC, %d %s in the last %s",
		approx, a.Orders, a.Unit, spoken(window), a.Threshold, a.Time.UTC().Format("2006-01-02 15:04:05"),
		a.TriggerCount, plural(a.TriggerCount, "trigger", "triggers"), strings.TrimPrefix(spoken(triggerWindow), "1 "))
	who = ascii(who)
	if room := maxText - len(tail); len(who) > room {
		who = who[:max(room-2, 0)] + ".."
	}
	return who + tail
}

// spoken writes d the way people say it: "15 s", "1 minute", "2 minutes".
func spoken(d time.Duration) string {
	switch {
	case d >= time.Minute && d%time.Minute == 0:
		n := int64(d / time.Minute)
		return fmt.Sprintf("%d %s", n, plural(n, "minute", "minutes"))
	default:
		return fmt.Sprintf("%d s", int64(d/time.Second))
	}
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ascii replaces what SNS subjects and GSM text cannot carry.
func ascii(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// message returns the SNS notification of a: the JSON body for SQS,
// Lambda and HTTP(S) subscribers, the short text for SMS and email.
func message(topic string, a *Alarm, body []byte) processors.Message {
	// SNS subjects are printable ASCII, under 100 characters.
	subject := ascii(a.Text)
	if len(subject) > 99 {
		subject = subject[:99]
	}
	return processors.Message{
		Topic:   topic,
		Subject: subject,
		Body:    body,
		Text:    a.Text,
		Attributes: map[string]string{
			"alarm":         a.Name,
			"severity":      a.Severity,
			"mode":          a.Mode,
			"period":        periodKey(a.Period),
			"orders":        strconv.FormatInt(a.Orders, 10),
			"trigger_count": strconv.FormatInt(a.TriggerCount, 10),
			"dedup_id":      a.DedupID,
		},
		// One message group per alarm: FIFO ordering across alarms buys
		// nothing, and a group blocked on one subscriber's failure would
		// hold back no other alarm.
		DedupID: a.DedupID,
		GroupID: a.DedupID,
	}
}

// BlocklistPeriod is the sort key of the blocklist item a web tier reads:
// GetItem alarm=<alarm id>#blocklist, period=latest (README.md).
const BlocklistPeriod = "latest"

// blocklistItems returns the blocklist item of a (option blocklist): the
// top customers and IPs of its window, until it expires.
func blocklistItems(table string, a *Alarm, now time.Time, ttl time.Duration) []processors.Item {
	list := func(tops []Top) types.AttributeValue {
		v := make([]types.AttributeValue, len(tops))
		for i, t := range tops {
			v[i] = window.Str(t.Key)
		}
		return &types.AttributeValueMemberL{Value: v}
	}
	item := func(period string) processors.Item {
		pk := a.ID + "#blocklist"
		return processors.Item{Table: table, Key: pk + "|" + period, Attrs: map[string]types.AttributeValue{
			attrAlarm:            window.Str(pk),
			attrPeriod:           window.Str(period),
			"alarm_period":       window.Str(periodKey(a.Period)),
			"orders":             window.Int(a.Orders),
			"customers":          list(a.TopCustomers),
			"ips":                list(a.TopIPs),
			"created_at":         window.Str(now.UTC().Format(time.RFC3339)),
			window.AttrExpiresAt: window.Int(now.Add(ttl).Unix()),
		}}
	}
	return []processors.Item{item(BlocklistPeriod)}
}
