// Package rcf is a Robust Random Cut Forest anomaly scorer for streams
// (Guha, Mishra, Roy, Schrijvers, "Robust Random Cut Forest Based Anomaly
// Detection on Streams", ICML 2016), the algorithm behind Kinesis Data
// Analytics' RANDOM_CUT_FOREST. Its defaults are that function's: 100
// trees, 256 points sampled per tree, time decay 100,000, shingle size 1.
//
// A Forest models one series (one key). Each input is a vector of
// Config.Dimensions values; the last Config.ShingleSize inputs are
// concatenated into one point, so a series is scored by its recent
// shape. ScoreUpdate scores an input, then learns it:
//
//	f, err := rcf.New(rcf.Config{Seed: 1})
//	...
//	score, err := f.ScoreUpdate([]float64{reading})
//
// Trees. Each tree is a random cut tree over its own sample: a cut picks
// a dimension with probability proportional to its range in the node's
// bounding box and a value uniformly inside it. Points are inserted and
// deleted incrementally (Guha et al., section 3), so a tree always has
// the distribution of a tree built from scratch on its current sample.
// Nodes keep their bounding boxes: insertion, deletion and scoring walk
// one root-to-leaf path. Duplicated points share a leaf with a mass.
//
// Sampling and time decay. Every tree keeps a weighted reservoir sample
// of SampleSize points: point number t gets the key
// log(-log u) - t/TimeDecay for u uniform in (0, 1), and the tree keeps
// the SampleSize smallest keys (Efraimidis-Spirakis sampling with weight
// exp(t/TimeDecay), the form the AWS library uses). So a point of age a
// is, relative to a new one, exp(-a/TimeDecay) as likely to stay in the
// sample: with the default 100,000, a regime older than about 100,000
// points keeps roughly 37% of its initial weight, and half of it after
// ln 2 × 100,000 ≈ 69,000. TimeDecay is in points (inputs), not seconds.
// +Inf disables decay (a uniform sample of the whole stream).
//
// Score. The score is the AWS RCF anomaly score rather than the
// collusive displacement (CoDisp) of the paper: KDA's ANOMALY_SCORE was
// computed this way, so thresholds users picked there carry over; it
// needs no tentative insertion and deletion (CoDisp does), so scoring is
// read-only and cheaper; and it estimates the same quantity, the
// expected change in tree depth a point causes. Per tree: walk to the
// leaf the point falls into, at depth d; start with 1/(d+1) (or, if the
// leaf holds this very point m times, (1 - m/2M)/(d + log2(m+1)) for a
// tree of mass M, which damps but does not zero duplicates); then, from
// the leaf's parent up to the root, at each node of depth k mix in
// s = p/(k+1) + (1-p)s where p is the probability that a random cut of
// the node's box extended by the point separates the point. The result
// times log2(M+1) is averaged over the trees. Typical points score
// about 1; a point isolated at the root of every tree scores
// log2(M+1), 8.0 at the default sample size.
//
// Warm-up. Scores are 0 until the first shingle is complete and the
// forest has taken in Config.OutputAfter points (default SampleSize/4 =
// 64), that is for ShingleSize-1+OutputAfter inputs. A restored forest
// has no warm-up.
//
// Memory. All storage is allocated by New and never grows: MemoryBytes
// (about 1.9 MB at the defaults with one dimension) bounds it. Scoring
// and learning allocate nothing.
//
// Snapshots. AppendBinary/MarshalBinary write the complete state in a
// versioned binary format (see SnapshotVersion); UnmarshalBinary/Restore
// read it back after checking it completely, returning a *SnapshotError
// (ErrSnapshot, ErrSnapshotVersion) for anything malformed, never
// panicking. A restored forest continues with exactly the scores the
// original would have produced. MaxSnapshotBytes bounds the size (about
// 0.8 MB at the defaults; typical 0.72 MB).
//
// Determinism. A forest is a function of Config.Seed and its inputs:
// each tree draws from its own PCG stream (seed, tree index).
package rcf
