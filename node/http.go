package node

import (
	"errors"
	"fmt"
	"github.com/sluicedb/sluice/partition"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PprofAccess says who may read /debug/pprof on the HTTP port.
type PprofAccess string

const (
	// PprofOff serves no /debug/pprof (the default): it shows the command
	// line and lets a caller keep the node busy profiling.
	PprofOff PprofAccess = "off"
	// PprofLocal serves it to clients on this host (loopback) only.
	PprofLocal PprofAccess = "local"
	// PprofAll serves it to every client of the HTTP port.
	PprofAll PprofAccess = "all"
)

// MaxProfileSeconds bounds the seconds of /debug/pprof/profile, /trace and
// delta profiles: a longer one is refused with 400.
const MaxProfileSeconds = 60

// The HTTP port's timeouts. A scrape of /metrics reads a small request and
// writes a few hundred KiB at most; a slow or idle client must not hold a
// connection (and its goroutine) for ever.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpIdleTimeout       = 2 * time.Minute
)

// startHTTP serves /metrics, /healthz and, if enabled, /debug/pprof.
func (n *Node) startHTTP(reg *prometheus.Registry) error {
	if n.cfg.HTTPAddr == "-" {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("node: http port: %w", err)
	}
	n.httpLn = n.limit(ln)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Kubernetes' convention: /livez says the process answers (restart it
	// if not), /readyz that it serves (send it traffic); /healthz is /readyz.
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	ready := func(w http.ResponseWriter, _ *http.Request) {
		if !n.Ready() {
			// Which partitions hold the node back, and why: a restore that
			// waits names the slot it waits for.
			http.Error(w, strings.Join(append([]string{"restoring"}, n.waiting()...), "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}
	mux.HandleFunc("/readyz", ready)
	mux.HandleFunc("/healthz", ready)
	writeTimeout := httpWriteTimeout
	if n.cfg.Pprof != PprofOff {
		mux.Handle("/debug/pprof/", guardPprof(n.cfg.Pprof, pprofMux()))
		// pprof refuses a profile at least as long as the write timeout.
		writeTimeout = MaxProfileSeconds*time.Second + httpWriteTimeout
	}
	n.httpSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.cfg.Log.Error().Err(err).Msg("http port stopped")
		}
	}()
	return nil
}

func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// guardPprof serves pprof to the clients access allows, with seconds bounded.
func guardPprof(access PprofAccess, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if access != PprofAll && !loopbackClient(r.RemoteAddr) {
			http.Error(w, "pprof is served to clients on the node's host only (--pprof=all serves every client)", http.StatusForbidden)
			return
		}
		if s := r.FormValue("seconds"); s != "" {
			sec, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil || sec < 0 || sec > MaxProfileSeconds {
				http.Error(w, fmt.Sprintf("seconds=%q: want 0 to %d", s, MaxProfileSeconds), http.StatusBadRequest)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func loopbackClient(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// waiting lists the partitions the registry gives this node that do not
// serve yet, each with its state.
func (n *Node) waiting() []string {
	v := n.registry.View()
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []string
	for _, p := range v.Partitions {
		if p.Owner != n.cfg.NodeID {
			continue
		}
		h, ok := n.parts[p.ID]
		switch {
		case !ok || h.p == nil:
			out = append(out, fmt.Sprintf("partition %d: not open", p.ID))
		case !h.p.Serving():
			out = append(out, fmt.Sprintf("partition %d: %s", p.ID, h.state()))
		}
	}
	sort.Strings(out)
	return out
}

// state is a held partition's state as ListPartitions and /healthz say it.
func (h *held) state() string { return describe(h.p.Status()) }

// describe says a partition's state in a word or a line: serving, closing,
// stopped, deposed, or "restoring 40% (waiting for slot 3 at 5757/5761: …)".
func describe(st partition.State) string {
	switch {
	case st.Deposed():
		return "deposed"
	case !st.Phase.Restoring():
		return st.Phase.String()
	}
	s := fmt.Sprintf("restoring %d%%", st.Percent)
	if st.Waiting != "" {
		s += " (" + st.Waiting + ")"
	}
	return s
}
