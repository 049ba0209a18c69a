// Package ops serves a worker's operations endpoints on one port:
// /healthz (the process is alive), /readyz (the engine started and its
// AWS dependencies answer; JSON, cached for two seconds) and /metrics
// (Prometheus text), plus /debug/pprof/ when EnablePprof is called (config
// `pprof: true`). Probe is the client side used by `consumer
// healthcheck`, since the container image has no shell or curl.
package ops
