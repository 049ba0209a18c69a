package traffic

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// AttackConfig describes a scripted low-rate form attack of the kind
// issue 19 reports: every client sends a browser User-Agent and a
// referer, never fetches robots.txt or assets, and posts to one form URL
// at up to MaxPerMinute requests per minute, in sessions spread over
// Duration.
type AttackConfig struct {
	Seed  uint64
	Start time.Time
	// Duration is the span attack sessions start in (default 48h).
	Duration time.Duration
	// IPs is the number of attacking addresses (default 20); Light of
	// them send only a handful of requests (default 4).
	IPs, Light int
	// MaxPerMinute caps a session's rate (default 11).
	MaxPerMinute float64
	// Form is the attacked URL (default "/account/register").
	Form string
	// Referers are the pages the requests claim to come from (default:
	// the form's own page and the home page of Host).
	Host     string
	Referers []string
}

// AttackHit is one request of the attack.
type AttackHit struct {
	Time                     time.Time
	IP, Method, Path         string
	Referer, UserAgent, Host string
	Status                   int
	Bytes                    int64
}

// attackUAs are current browser User-Agents the scripts rotate through.
var attackUAs = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
	"Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
}

func (c *AttackConfig) setDefaults() error {
	c.Duration = cmp.Or(c.Duration, 48*time.Hour)
	c.IPs = cmp.Or(c.IPs, 20)
	if c.Light == 0 {
		c.Light = min(4, c.IPs/5)
	}
	c.MaxPerMinute = cmp.Or(c.MaxPerMinute, 11)
	c.Form = cmp.Or(c.Form, "/account/register")
	c.Host = cmp.Or(c.Host, "shop.example")
	if len(c.Referers) == 0 {
		c.Referers = []string{"https://" + c.Host + c.Form, "https://" + c.Host + "/"}
	}
	switch {
	case c.Start.IsZero():
		return errors.New("attack: start time unset")
	case c.Duration < time.Hour:
		return errors.New("attack: duration must be at least 1h")
	case c.IPs < 1 || c.IPs > 10_000 || c.Light < 0 || c.Light > c.IPs:
		return fmt.Errorf("attack: ips %d, light %d: want 1-10000 and light <= ips", c.IPs, c.Light)
	case c.MaxPerMinute < 1 || c.MaxPerMinute > 600:
		return fmt.Errorf("attack: max_per_minute %g: want 1-600", c.MaxPerMinute)
	}
	return nil
}

// Attack returns the attack's requests in time order. It is deterministic
// for a Config. Timing is a script's: each address runs 1-6 sessions of
// 10-90 minutes at a steady rate (2 to MaxPerMinute per minute) with
// +-25% jitter per request, some 4xx answers (rejected submissions); half
// the addresses POST, half GET with a query; the light addresses send
// 3-15 requests in all.
func Attack(cfg AttackConfig) ([]AttackHit, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed))
	var out []AttackHit
	for i := range cfg.IPs {
		ip := fmt.Sprintf("185.%d.%d.%d", 100+rng.IntN(50), rng.IntN(256), 1+rng.IntN(254))
		ua := attackUAs[rng.IntN(len(attackUAs))]
		method, path := "POST", cfg.Form
		if i%2 == 1 { // half the scripts submit with GET and a query
			method, path = "GET", cfg.Form+"?email=u"+fmt.Sprint(rng.IntN(1e6))+"%40mail.example"
		}
		light := i >= cfg.IPs-cfg.Light
		budget := math.MaxInt
		sessions := 1 + rng.IntN(6)
		if light {
			budget, sessions = 3+rng.IntN(13), 1
		}
		for range sessions {
			t := cfg.Start.Add(time.Duration(rng.Int64N(int64(cfg.Duration))))
			end := t.Add(10*time.Minute + time.Duration(rng.Int64N(int64(80*time.Minute))))
			perMin := 2 + rng.Float64()*(cfg.MaxPerMinute-2)
			gap := time.Duration(float64(time.Minute) / perMin)
			for ; t.Before(end) && budget > 0; budget-- {
				status := 200
				if rng.IntN(8) == 0 {
					status = 403
				}
				out = append(out, AttackHit{Time: t, IP: ip, Method: method, Path: path,
					Referer: cfg.Referers[rng.IntN(len(cfg.Referers))], UserAgent: ua, Host: cfg.Host,
					Status: status, Bytes: int64(400 + rng.IntN(200))})
				t = t.Add(time.Duration(float64(gap) * (0.75 + 0.5*rng.Float64())))
			}
		}
	}
	slices.SortStableFunc(out, func(a, b AttackHit) int { return a.Time.Compare(b.Time) })
	return out, nil
}
