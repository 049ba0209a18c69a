package window

import (
	"fmt"
	"slices"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

// Config shapes tumbling event-time windows. Embed it (yaml ",inline") in
// a processor's config to get the window/grace/idle keys.
type Config struct {
	// Size is the window length. Windows are aligned to multiples of Size
	// since the zero time, i.e. to UTC minute/hour boundaries.
	Size time.Duration `yaml:"window"`
	// Grace is how far the watermark must pass a window's end before it
	// closes: records up to Grace behind the newest one still count.
	Grace time.Duration `yaml:"grace"`
	// Idle is the clock allowance for idle shards: once no record has
	// arrived for Idle, a window also closes when the clock reaches
	// end+Grace+Idle.
	Idle time.Duration `yaml:"idle"`
}

// Validate checks c; path prefixes the field names in errors
// ("processors.topn").
func (c Config) Validate(path string) error {
	switch {
	case c.Size < time.Second:
		return processors.FieldError(path+".window", "must be >= 1s")
	case c.Size%time.Second != 0:
		return processors.FieldError(path+".window", "must be a whole number of seconds")
	case (24*time.Hour)%c.Size != 0:
		return processors.FieldError(path+".window", "must divide 24h evenly (windows align to UTC days)")
	case c.Grace < 0:
		return processors.FieldError(path+".grace", "must be >= 0")
	case c.Grace > 24*time.Hour:
		return processors.FieldError(path+".grace", "must be <= 24h")
	case c.Idle < 0:
		return processors.FieldError(path+".idle", "must be >= 0")
	}
	return nil
}

// Start returns the start of the window holding event time t, in UTC.
func (c Config) Start(t time.Time) time.Time { return t.Truncate(c.Size).UTC() }

// Verdict says what Tracker.Add did with a record.
type Verdict uint8

const (
	// Accepted: the record belongs to the returned open window; count it.
	Accepted Verdict = iota
	// Late: its window has closed; the record is counted as late only.
	Late
	// Replayed: a previous owner already counted it (position at or below
	// the restored coverage); ignore it.
	Replayed
	// Undated: the record has no event time (neither payload time nor
	// arrival time); ignore it.
	Undated
)

func (v Verdict) String() string {
	switch v {
	case Accepted:
		return "accepted"
	case Late:
		return "late"
	case Replayed:
		return "replayed"
	case Undated:
		return "undated"
	default:
		return "unknown"
	}
}

// Counts are the verdicts since the last TakeCounts.
type Counts struct {
	Accepted, Late, Replayed, Undated int64
}

// Window is one open (or just closed) window and the processor's state
// for it.
type Window[S any] struct {
	Start, End time.Time
	State      S
	// Covered is the position of the newest record counted in State.
	Covered Position
	// Restored is true when State came from a previous owner's partial.
	Restored bool
	// Stale is free for the window's owner: the windowed runner counts in
	// it the running-result merges it still owes the window.
	Stale uint8

	skipTo Position // records at or below were counted by a previous owner
	dirty  bool
}

// Dirty reports whether State changed since the last Tracker.MarkClean.
func (w *Window[S]) Dirty() bool { return w.dirty }

// Touch marks w changed without a record (e.g. a processor-side update).
func (w *Window[S]) Touch() { w.dirty = true }

// Tracker assigns records to windows and decides when windows close. One
// Tracker serves one shard lease; it is not safe for concurrent use.
// Open windows are few by construction (every window ending Grace before
// the watermark is closed), so they live in a small sorted slice.
type Tracker[S any] struct {
	cfg      Config
	newState func() S

	open       []*Window[S] // sorted by Start
	closed     []*Window[S] // reused result of Expire/CloseAll
	recent     []time.Time  // starts closed by the last Expire, kept in the cursor
	last       *Window[S]   // fast path: consecutive records share a window
	lastDue    time.Time    // last.End + Grace
	watermark  time.Time
	closedUpTo time.Time // End of the newest closed window
	floor      time.Time // records before it are late (SetFloor)
	pos        Position  // newest position seen
	restoredTo Position  // newest position a previous owner covered
	lastActive time.Time // clock time of the last Expire that followed records
	active     bool      // records arrived since the last Expire
	sealed     bool      // positions are cloned (no batch aliasing)
	counts     Counts
}

// NewTracker returns a tracker whose windows start with newState().
func NewTracker[S any](cfg Config, newState func() S) *Tracker[S] {
	return &Tracker[S]{cfg: cfg, newState: newState, sealed: true}
}

// Config returns the window configuration.
func (t *Tracker[S]) Config() Config { return t.cfg }

// Add assigns a record with event time ev at position pos. On Accepted
// it returns the window to update (already marked dirty and covering
// pos); otherwise nil.
func (t *Tracker[S]) Add(ev time.Time, pos Position) (*Window[S], Verdict) {
	if pos.Compare(t.pos) > 0 {
		t.pos = pos
		t.sealed = false
	}
	if ev.IsZero() {
		t.counts.Undated++
		return nil, Undated
	}
	t.active = true
	w, due := t.last, t.lastDue
	if w == nil || ev.Before(w.Start) || !ev.Before(w.End) {
		if w = t.find(ev); w != nil {
			due = w.End.Add(t.cfg.Grace)
		}
	}
	if w != nil && !t.watermark.Before(due) {
		// Due but not yet expired: late, so results do not depend on
		// when Flush runs.
		w = nil
	}
	if w == nil {
		start := t.cfg.Start(ev)
		end := start.Add(t.cfg.Size)
		if start.Before(t.closedUpTo) || !t.watermark.Before(end.Add(t.cfg.Grace)) || ev.Before(t.floor) {
			if !t.restoredTo.IsZero() && pos.Compare(t.restoredTo) <= 0 {
				t.counts.Replayed++
				return nil, Replayed
			}
			t.counts.Late++
			return nil, Late
		}
		w = &Window[S]{Start: start, End: end, State: t.newState()}
		t.insert(w)
		due = end.Add(t.cfg.Grace)
	} else if !w.skipTo.IsZero() && pos.Compare(w.skipTo) <= 0 {
		t.counts.Replayed++
		return nil, Replayed
	} else if ev.Before(t.floor) {
		t.counts.Late++
		return nil, Late
	}
	t.last, t.lastDue = w, due
	if ev.After(t.watermark) {
		t.watermark = ev
	}
	w.dirty = true
	w.Covered = pos
	t.sealed = false
	t.counts.Accepted++
	return w, Accepted
}

func (t *Tracker[S]) find(ev time.Time) *Window[S] {
	for _, w := range t.open {
		if !ev.Before(w.Start) && ev.Before(w.End) {
			return w
		}
	}
	return nil
}

func (t *Tracker[S]) insert(w *Window[S]) {
	i, _ := slices.BinarySearchFunc(t.open, w.Start, func(x *Window[S], s time.Time) int { return x.Start.Compare(s) })
	t.open = slices.Insert(t.open, i, w)
}

// Seal copies the positions the tracker keeps, which may alias the batch
// payload. Call it at the end of Process; Expire calls it too.
func (t *Tracker[S]) Seal() {
	if t.sealed {
		return
	}
	t.pos = t.pos.Clone()
	for _, w := range t.open {
		if w.dirty {
			w.Covered = w.Covered.Clone()
		}
	}
	t.sealed = true
}

// Due reports whether the watermark has passed the close of an open
// window, so the next Expire closes it whatever the clock says. It is
// cheap (the oldest open window closes first).
func (t *Tracker[S]) Due() bool {
	return len(t.open) > 0 && !t.watermark.Before(t.open[0].End.Add(t.cfg.Grace))
}

// Expire closes the windows that are done at clock time now and returns
// them oldest first. The slice is reused by the next Expire or CloseAll;
// the windows are no longer tracked.
func (t *Tracker[S]) Expire(now time.Time) []*Window[S] {
	t.Seal()
	if t.active || t.lastActive.IsZero() {
		t.lastActive = now
		t.active = false
	}
	idle := now.Sub(t.lastActive) >= t.cfg.Idle
	t.closed = t.closed[:0]
	t.recent = t.recent[:0]
	n := 0
	for _, w := range t.open {
		due := w.End.Add(t.cfg.Grace)
		if !t.watermark.Before(due) || (idle && !now.Before(due.Add(t.cfg.Idle))) {
			t.close(w)
			continue
		}
		t.open[n] = w
		n++
	}
	clear(t.open[n:])
	t.open = t.open[:n]
	return t.closed
}

func (t *Tracker[S]) close(w *Window[S]) {
	t.closed = append(t.closed, w)
	t.recent = append(t.recent, w.Start)
	if w.End.After(t.closedUpTo) {
		t.closedUpTo = w.End
	}
	if t.last == w {
		t.last = nil
	}
}

// CloseAll closes every open window (the shard ended) and returns them
// oldest first; see Expire.
func (t *Tracker[S]) CloseAll() []*Window[S] {
	t.Seal()
	t.closed = t.closed[:0]
	t.recent = t.recent[:0]
	for _, w := range t.open {
		t.close(w)
	}
	clear(t.open)
	t.open = t.open[:0]
	return t.closed
}

// Drop forgets all state (the lease was lost).
func (t *Tracker[S]) Drop() {
	*t = Tracker[S]{cfg: t.cfg, newState: t.newState, sealed: true}
}

// Open returns the open windows, oldest first. The slice is the
// tracker's own: do not modify it.
func (t *Tracker[S]) Open() []*Window[S] { return t.open }

// MarkClean clears the dirty flag of every open window (after their
// partials were emitted).
func (t *Tracker[S]) MarkClean() {
	for _, w := range t.open {
		w.dirty = false
	}
}

// Advance raises the watermark to ev without a record: progress a
// processor can prove otherwise, e.g. the arrival time of a record it does
// not count when it counts by arrival time (a shard's arrival times only
// grow). Windows it makes due close at the next Expire.
func (t *Tracker[S]) Advance(ev time.Time) {
	if ev.After(t.watermark) {
		t.watermark = ev
	}
}

// SetFloor makes records with event times before ev late from now on,
// even in windows still open: a processor that told other shards its
// counts before ev are final (finer than a window) keeps its word. The
// floor never moves back.
func (t *Tracker[S]) SetFloor(ev time.Time) {
	if ev.After(t.floor) {
		t.floor = ev
	}
}

// Watermark returns the largest event time accepted or advanced to.
func (t *Tracker[S]) Watermark() time.Time { return t.watermark }

// Position returns the newest position seen.
func (t *Tracker[S]) Position() Position { return t.pos }

// TakeCounts returns the verdict counts since the previous call and
// resets them.
func (t *Tracker[S]) TakeCounts() Counts {
	c := t.counts
	t.counts = Counts{}
	return c
}

// Cursor returns what a next owner needs to find this shard's partials:
// the watermark, the closed horizon, the newest position and the starts
// of the open windows and of those closed by the last Expire (whose final
// items may not be durable yet if a crash interrupts the write).
func (t *Tracker[S]) Cursor() Cursor {
	c := Cursor{
		Watermark:  t.watermark,
		ClosedUpTo: t.closedUpTo,
		Position:   t.pos,
		Windows:    make([]time.Time, 0, len(t.open)+len(t.recent)),
	}
	c.Windows = append(c.Windows, t.recent...)
	for _, w := range t.open {
		c.Windows = append(c.Windows, w.Start)
	}
	slices.SortFunc(c.Windows, time.Time.Compare)
	c.Windows = slices.CompactFunc(c.Windows, time.Time.Equal)
	return c
}

// RestoreCursor sets the watermark, closed horizon and coverage from a
// previous owner's cursor. Call it before Restore and before any Add.
func (t *Tracker[S]) RestoreCursor(c Cursor) {
	t.watermark = c.Watermark
	t.closedUpTo = c.ClosedUpTo
	t.pos = c.Position.Clone()
	if c.Position.Compare(t.restoredTo) > 0 {
		t.restoredTo = c.Position.Clone()
	}
}

// Restore re-opens the window starting at start with a previous owner's
// state covering records up to covered. A final window is not reopened:
// it only extends the closed horizon so its records count as replayed or
// late. It returns the window (nil if final) so callers can adjust it.
func (t *Tracker[S]) Restore(start time.Time, state S, covered Position, final bool) *Window[S] {
	start = t.cfg.Start(start)
	end := start.Add(t.cfg.Size)
	covered = covered.Clone()
	if covered.Compare(t.restoredTo) > 0 {
		t.restoredTo = covered
	}
	if covered.Compare(t.pos) > 0 {
		t.pos = covered
	}
	if final {
		if end.After(t.closedUpTo) {
			t.closedUpTo = end
		}
		return nil
	}
	if w := t.find(start); w != nil {
		w.State, w.Covered, w.skipTo, w.Restored = state, covered, covered, true
		return w
	}
	w := &Window[S]{Start: start, End: end, State: state, Covered: covered, skipTo: covered, Restored: true}
	t.insert(w)
	return w
}

// String describes t for logs.
func (t *Tracker[S]) String() string {
	return fmt.Sprintf("window=%s open=%d watermark=%s closed_up_to=%s", t.cfg.Size, len(t.open),
		t.watermark.Format(time.RFC3339), t.closedUpTo.Format(time.RFC3339))
}

// ClosedUpTo returns the end of the newest closed window: records before
// it are late.
func (t *Tracker[S]) ClosedUpTo() time.Time { return t.closedUpTo }
