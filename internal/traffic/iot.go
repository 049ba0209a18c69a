package traffic

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// KindIoT is an IoT sensor reading (IoTGenerator).
const KindIoT Kind = 3

// IoTConfig configures an IoTGenerator: the traffic of the Kinesis Data
// Analytics RANDOM_CUT_FOREST IoT example, {"iotName": "DemoSensor",
// "iotValue": 14, "ts": "..."}, with integer values uniform in
// NormalMin..NormalMax and, for AnomalyShare of the readings, in
// AnomalyMin..AnomalyMax. Zero fields take defaults.
type IoTConfig struct {
	Seed  uint64
	Start time.Time // required, as Config.Start
	// Rate is readings per second over all sensors (Poisson). Default 100.
	Rate float64
	// Sensors are the iotName values, picked uniformly. Default
	// ["DemoSensor"].
	Sensors []string
	// AnomalyShare is the share of anomalous readings. Default 0.01.
	AnomalyShare float64
	// Value ranges (inclusive). Defaults 10..20 and 100..120.
	NormalMin, NormalMax   int
	AnomalyMin, AnomalyMax int
}

func (c *IoTConfig) setDefaults() error {
	if c.Start.IsZero() {
		return errors.New("traffic: start time required")
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if len(c.Sensors) == 0 {
		c.Sensors = []string{"DemoSensor"}
	}
	if c.AnomalyShare == 0 {
		c.AnomalyShare = 0.01
	}
	if c.NormalMin == 0 && c.NormalMax == 0 {
		c.NormalMin, c.NormalMax = 10, 20
	}
	if c.AnomalyMin == 0 && c.AnomalyMax == 0 {
		c.AnomalyMin, c.AnomalyMax = 100, 120
	}
	switch {
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("traffic: rate %v must be positive", c.Rate)
	case c.AnomalyShare < 0 || c.AnomalyShare > 1:
		return fmt.Errorf("traffic: anomaly share %v outside [0, 1]", c.AnomalyShare)
	case c.NormalMin > c.NormalMax || c.AnomalyMin > c.AnomalyMax:
		return fmt.Errorf("traffic: empty value range %d..%d or %d..%d", c.NormalMin, c.NormalMax, c.AnomalyMin, c.AnomalyMax)
	}
	for _, s := range c.Sensors {
		if s == "" || len(s) > maxKeyBytes {
			return fmt.Errorf("traffic: sensor name %q must be 1 to %d bytes", s, maxKeyBytes)
		}
	}
	return nil
}

// IoTGenerator produces IoT readings. The same IoTConfig gives the same
// events. It is not safe for concurrent use.
type IoTGenerator struct {
	cfg  IoTConfig
	rng  *rand.Rand
	next time.Duration
}

// NewIoT returns an IoTGenerator for cfg.
func NewIoT(cfg IoTConfig) (*IoTGenerator, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	g := &IoTGenerator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x696f74))}
	g.next = g.gap()
	return g, nil
}

func (g *IoTGenerator) gap() time.Duration {
	return time.Duration(g.rng.ExpFloat64() / g.cfg.Rate * float64(time.Second))
}

// Next fills ev with the next reading, appending its payload to
// ev.Payload[:0]. ev.Key is the sensor (use it as the partition key, so
// each sensor's readings stay in order on one shard) and ev.Anomaly says
// whether the value was drawn from the anomalous range.
func (g *IoTGenerator) Next(ev *Event) {
	off := g.next
	g.next += g.gap()
	c := &g.cfg
	sensor := c.Sensors[g.rng.IntN(len(c.Sensors))]
	anomaly := g.rng.Float64() < c.AnomalyShare
	v := c.NormalMin + g.rng.IntN(c.NormalMax-c.NormalMin+1)
	if anomaly {
		v = c.AnomalyMin + g.rng.IntN(c.AnomalyMax-c.AnomalyMin+1)
	}
	ev.Offset, ev.Time, ev.Kind = off, c.Start.Add(off), KindIoT
	ev.Keys = Keys{}
	ev.Key, ev.Anomaly = sensor, anomaly
	b := append(ev.Payload[:0], `{"iotName":`...)
	b = appendString(b, sensor)
	b = append(b, `,"iotValue":`...)
	b = strconv.AppendInt(b, int64(v), 10)
	b = append(b, `,"ts":"`...)
	b = ev.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	ev.Payload = append(b, `"}`...)
}
