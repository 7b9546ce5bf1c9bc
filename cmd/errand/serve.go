package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/admit"
	"github.com/errandhq/errand/artifact"
	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/bridge"
	"github.com/errandhq/errand/channel"
	"github.com/errandhq/errand/config"
	"github.com/errandhq/errand/event"
	"github.com/errandhq/errand/graphql"
	"github.com/errandhq/errand/httpapi"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/lifecycle"
	"github.com/errandhq/errand/netguard"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/runner"
	runexec "github.com/errandhq/errand/runner/exec"
	"github.com/errandhq/errand/runner/httptarget"
	"github.com/errandhq/errand/signing"
	"github.com/errandhq/errand/spec"
	"github.com/errandhq/errand/storage"
	"github.com/errandhq/errand/telemetry"
	"github.com/errandhq/errand/ui"
	"github.com/errandhq/errand/webhook"
	"github.com/errandhq/errand/worker"
	"github.com/spf13/cobra"
)

func newServeCmd(getenv func(string) string, stderr io.Writer) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the API (configuration from errand.yaml, ERRAND_* variables and flags)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd, file, getenv)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg, newLogger(cfg, stderr))
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "configuration file (default errand.yaml when it exists; or ERRAND_CONFIG)")
	f.String("listen", "", "address to serve on (default :8080)")
	f.String("store", "", "store URL (default sqlite://./errand-data/errand.db)")
	f.Bool("dev", false, "development mode: no authentication, every request is the dev principal")
	return cmd
}

// loadConfig reads the configuration named by --config, ERRAND_CONFIG or
// ./errand.yaml, with the command's set flags on top.
func loadConfig(cmd *cobra.Command, file string, getenv func(string) string) (*config.Config, error) {
	if file == "" {
		file = getenv("ERRAND_CONFIG")
	}
	if file == "" {
		if _, err := os.Stat("errand.yaml"); err == nil {
			file = "errand.yaml"
		}
	}
	flags := map[string]string{}
	for _, name := range []string{"listen", "store", "dev"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			flags[name] = f.Value.String()
		}
	}
	return config.Load(config.Source{File: file, Getenv: getenv, Flags: flags})
}

// newLogger is the configured logger; records logged under a traced
// context carry its trace_id and span_id.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
}

// app is a running errand: store, services, maintenance and HTTP server.
type app struct {
	log        *slog.Logger
	cfg        *config.Config
	store      storage.Store
	backing    *backing
	jobs       *job.Service
	channels   *channel.Service
	hub        *event.Hub
	queue      *queue.Queue
	maintainer *queue.Maintainer
	artifacts  artifact.Store
	runners    *runner.Pool
	webhooks   *webhook.Service
	bridges    *bridge.Bridges
	auth       *auth.Authenticator
	audit      *audit.Log
	certs      *certHolder     // nil without TLS
	contracts  *spec.Server    // the OpenAPI and AsyncAPI documents and /docs
	obs        observability   // metrics, traces, usage
	limiter    *admit.Limiter  // rate limits: operations' (jobs) and http.rate_limit (the API)
	services   lifecycle.Group // started in order, stopped in reverse
	server     *http.Server
	listener   net.Listener
	cancel     context.CancelFunc // ends long polls at shutdown
	served     chan error
}

// limiterLease is how long a node holds rate-limit tokens it took from
// PostgreSQL's shared buckets ahead of its requests (admit.LimiterConfig.Lease):
// one round trip serves many requests of a busy key, and a token not handed
// out within it lapses unused (never admitted twice).
const limiterLease = 100 * time.Millisecond

// newLimiter is the rate limiter of the store: on PostgreSQL, leasing tokens
// from the buckets every node shares; on SQLite, asking its in-process
// buckets for each.
func newLimiter(store storage.Store, cfg *config.Config) *admit.Limiter {
	c := &admit.LimiterConfig{}
	if isPostgres(cfg.Store) {
		c.Lease = limiterLease
	}
	return admit.NewLimiter(store, c)
}

// gcPercent is the GC target errand runs with unless GOGC says otherwise. Jobs live
// in the store, not the heap, so the live heap stays small at any queue depth and
// the default (100) spends CPU collecting a few megabytes over and over; 400 cut
// GC from ~8 % to ~2 % of CPU under load for a few tens of megabytes more RSS.
const gcPercent = 400

// startApp opens the store and starts everything; it returns once the listener is bound.
func startApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	applyMemoryLimit(log, int64(cfg.MemoryLimit)) // so that GOGC=400 cannot hold a spike's memory
	raiseFileLimit()                              // each subscriber is an open connection
	a := &app{log: log, cfg: cfg, served: make(chan error, 1)}
	if err := a.obs.newTracing(cfg, log); err != nil {
		return nil, err
	}
	var err error
	if a.backing, err = openStore(ctx, cfg, log, time.Minute, &a.obs.observers); err != nil {
		return nil, err
	}
	// Requests' writes get a span each (store commit) while errand traces.
	a.store, a.artifacts = a.obs.tracing.Store(a.backing.store), a.backing.artifacts
	if err := a.start(ctx); err != nil {
		a.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return a, nil
}

// start builds the services over the open store and starts them, in
// dependency order; Stop undoes whatever part of it ran.
func (a *app) start(ctx context.Context) error {
	if err := a.build(ctx); err != nil {
		return err
	}
	a.services.Add("tracing", a.obs.tracing) // stopped last: it sends the spans of everything before it
	if l := a.backing.leader; l != nil {
		a.services.Add("leader", l) // first, so maintenance may lead from its first pass
	}
	a.services.Add("audit", a.audit)
	a.services.Add("auth", a.auth)
	if u := a.obs.usage; u != nil {
		a.services.Add("usage", u) // its last flush comes after everything that counts has stopped
	}
	a.services.Add("webhooks", a.webhooks) // before anything writes events whose deliveries it sends
	a.services.Add("maintainer", a.maintainer)
	a.services.Add("runners", a.runners)
	a.services.Add("bridges", a.bridges) // after what runs jobs; before the API, which shows them
	if m := a.obs.metrics; m != nil && a.cfg.Metrics.Listen != "" {
		a.services.Add("metrics", &metricsServer{addr: a.cfg.Metrics.Listen, handler: m.Handler(), log: a.log})
	}
	a.services.Add("http", lifecycle.Func{OnStart: a.listen, OnStop: a.shutdown})
	return a.services.Start(ctx)
}

// build makes every service and wires it to the store: what hears commits
// (Listen) and what writes in every event's transaction (Hook).
func (a *app) build(ctx context.Context) error {
	cfg := a.cfg
	var err error
	hub, sig := event.NewHub(), queue.NewSignal()
	a.hub = hub
	a.store.Listen(hub) // SSE, WebSocket and waits hear committed events
	a.store.Listen(sig) // long-polling workers wake when jobs are ready
	pageBytes := int64(cfg.HTTP.PageBytes)
	if a.channels, err = channel.NewService(a.store, cfg.ChannelList(), &channel.Config{PageBytes: pageBytes,
		TraceParent: telemetry.TraceParent}); err != nil {
		return err
	}
	if err := a.obs.build(cfg, a.backing, a.store, hub, opNames(cfg), a.channels, a.log); err != nil {
		return err
	}
	if a.webhooks, err = newWebhooks(a.store, cfg, a.log, a.backing.lead, &a.obs); err != nil {
		return err
	}
	a.store.Hook(a.webhooks)   // every event's deliveries commit with it (the outbox)
	a.store.Listen(a.webhooks) // first attempts of committed deliveries; endpoint changes on any node
	ops, err := a.withSecrets(ctx, cfg.OperationList())
	if err != nil {
		return err
	}
	a.limiter = newLimiter(a.store, cfg)
	if a.jobs, err = job.NewService(a.store, hub, ops, &job.Config{MaxWait: time.Duration(cfg.HTTP.MaxWait),
		Artifacts: a.artifacts, CheckCallback: a.webhooks.CheckCallbackURL, PageBytes: pageBytes,
		ListTimeout: time.Duration(cfg.HTTP.ListTimeout), TraceParent: telemetry.TraceParent, Limiter: a.limiter}); err != nil {
		return err
	}
	if a.queue, err = queue.New(a.store, sig, ops, &queue.Config{DefaultLease: time.Duration(cfg.Workers.DefaultLease),
		MaxLease: time.Duration(cfg.Workers.MaxLease), MaxWait: time.Duration(cfg.HTTP.MaxWait), MaxJobs: cfg.Workers.MaxJobs,
		MaxLeaseBytes: pageBytes, Artifacts: a.artifacts, MaxArtifactBytes: cfg.Artifacts.MaxBytes,
		LeaseParent: a.obs.tracing.LeaseParent}); err != nil {
		return err
	}
	a.maintainer = queue.NewMaintainer(a.queue, &queue.MaintainConfig{Lead: a.backing.lead, Log: a.log})
	if a.runners, err = runner.New(a.queue, ops, handlers(ops), &runner.Config{Log: a.log,
		TracerProvider: a.obs.tracing.Provider()}); err != nil {
		return err
	}
	if a.bridges, err = bridge.New(bridge.Deps{Store: a.store, Channels: a.channels, Jobs: a.jobs, Dialers: dialers(),
		Elect: a.backing.elect, Log: a.log}, cfg.BridgeList()); err != nil {
		return err
	}
	a.store.Listen(a.bridges) // commits wake the publish routes
	if m := a.obs.metrics; m != nil {
		m.WatchBridges(func() []telemetry.BridgeSample { return bridgeSamples(a.bridges.Status("", true)) })
	}
	return a.buildAccess(ctx)
}

// opNames are the declared operations' names.
func opNames(cfg *config.Config) []string {
	var out []string
	for _, op := range cfg.OperationList() {
		out = append(out, op.Name)
	}
	return out
}

// newWebhooks makes the webhook service from the configuration. Development
// mode also lets deliveries reach loopback.
func newWebhooks(store storage.Store, cfg *config.Config, log *slog.Logger, lead func() bool, obs *observability) (*webhook.Service, error) {
	w := cfg.Webhooks
	allow := w.AllowPrivate
	if cfg.Dev {
		allow = append(slices.Clone(allow), "127.0.0.0/8", "::1/128")
	}
	guard, err := netguard.New(allow)
	if err != nil {
		return nil, err
	}
	var schedule []time.Duration
	for _, d := range w.RetrySchedule {
		schedule = append(schedule, time.Duration(d))
	}
	return webhook.New(store, &webhook.Config{Timeout: time.Duration(w.Timeout), Schedule: schedule,
		Concurrency: w.Concurrency, RateLimit: w.RateLimit, DisableAfter: time.Duration(w.DisableAfter),
		Retention: time.Duration(w.Retention), RotationOverlap: time.Duration(w.RotationOverlap), Guard: guard, Log: log, Lead: lead,
		Meter: obs.webhookMeter(), Tracer: obs.tracing})
}

// withSecrets gives each http operation without a configured secret one errand
// makes once and keeps in the store (shown by GET /v1/operations/{name}).
func (a *app) withSecrets(ctx context.Context, ops []errand.Operation) ([]errand.Operation, error) {
	for i, op := range ops {
		if op.Handler.Type != errand.HandlerHTTP || op.Handler.Secret != "" {
			continue
		}
		secret, err := a.store.Setting(ctx, "signing_secret:"+op.Name, signing.NewSecret())
		if err != nil {
			return nil, fmt.Errorf("signing secret of %s: %w", op.Name, err)
		}
		ops[i].Handler.Secret = secret
	}
	return ops, nil
}

// handlers makes the runners of the operations errand runs itself.
func handlers(ops []errand.Operation) map[string]worker.Handler {
	out := map[string]worker.Handler{}
	for _, op := range ops {
		switch op.Handler.Type {
		case errand.HandlerHTTP:
			out[op.Name] = httptarget.New(op, op.Handler.Secret).Run
		case errand.HandlerExec:
			out[op.Name] = runexec.New(op).Run
		}
	}
	return out
}

func (a *app) listen(ctx context.Context) error {
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	maxStreams := a.cfg.HTTP.MaxStreams
	if a.cfg.Dev {
		maxStreams = 0
	}
	gql, err := a.graphQL()
	if err != nil {
		cancel()
		return err
	}
	a.contracts = &spec.Server{}
	deps := httpapi.Deps{Log: a.log, Jobs: a.jobs, Queue: a.queue, Channels: a.channels, Hub: a.hub,
		Store: a.store, Webhooks: a.webhooks, Auth: a.auth, Audit: a.audit, GraphQL: gql, Bridges: a.bridges, Streams: base, Contracts: a.contracts,
		Limiter: a.limiter}
	a.obs.httpDeps(a.cfg, &deps)
	if deps.UI, err = ui.New(ui.Deps{Log: a.log, Jobs: a.jobs, Channels: a.channels, Hub: a.hub, Store: a.store,
		Webhooks: a.webhooks, Auth: a.auth, Audit: a.audit, Usage: deps.Usage, Bridges: a.bridges},
		&ui.Config{Dev: a.cfg.Dev, Version: buildVersion()}); err != nil {
		cancel()
		return err
	}
	httpCfg := &httpapi.Config{Dev: a.cfg.Dev, MaxBodyBytes: a.cfg.HTTP.MaxBodyBytes, MaxWait: time.Duration(a.cfg.HTTP.MaxWait),
		MaxArtifactBytes: a.cfg.Artifacts.MaxBytes, CORSOrigins: a.cfg.HTTP.CORS.Origins,
		CORSMaxAge: time.Duration(a.cfg.HTTP.CORS.MaxAge), MaxStreams: maxStreams,
		ReplayBytes: int64(a.cfg.HTTP.ReplayBytes), StreamBufferBytes: int64(a.cfg.HTTP.StreamBufferBytes),
		RateLimit: a.cfg.HTTP.Limit()}
	handler, err := httpapi.NewServer(deps, httpCfg)
	if err != nil {
		cancel()
		return err
	}
	handler = a.obs.tracing.Handler(handler) // outermost: the request's span is in every log line and commit under it
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)            // over TLS, by ALPN
	protocols.SetUnencryptedHTTP2(true) // without TLS, with prior knowledge
	conns := httpapi.NewConnLimit(maxConnections(a.cfg.HTTP.MaxConnections, fileLimit()), a.log)
	a.server = &http.Server{
		Handler:           conns.Guard(handler),
		ConnState:         conns.ConnState,
		ConnContext:       conns.ConnContext,
		Protocols:         protocols,
		ReadHeaderTimeout: time.Duration(a.cfg.HTTP.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(a.cfg.HTTP.ReadHeaderTimeout) + time.Minute,
		IdleTimeout:       time.Duration(a.cfg.HTTP.IdleTimeout),
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	if a.listener, err = net.Listen("tcp", a.cfg.Listen); err != nil {
		cancel()
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	a.listener = conns.Listener(a.listener, a.certs == nil)
	if a.certs != nil {
		a.server.TLSConfig = a.certs.config(a.cfg.TLS.MinVersion)
		a.listener = tls.NewListener(a.listener, a.server.TLSConfig)
	}
	a.warnExposed()
	if err := a.contracts.Update(spec.Input{Config: a.cfg, Routes: httpapi.Routes(deps, httpCfg), URL: a.publicURL(),
		Version: buildVersion(), Extensions: []spec.Extension{graphQLContract(), bridgeContract(a.bridges.AsyncAPI())}}); err != nil {
		cancel()
		a.listener.Close()
		return err
	}
	go func() { a.served <- a.server.Serve(a.listener) }()
	a.log.Info("listening", "addr", a.listener.Addr().String(), "url", a.URL(), "store", a.cfg.Store, "dev", a.cfg.Dev,
		"tls", a.certs != nil, "max_connections", conns.Max(), "file_limit", fileLimit())
	return nil
}

// graphQL makes the GraphQL API over the services.
func (a *app) graphQL() (*graphql.Server, error) {
	g := a.cfg.GraphQL
	return graphql.New(graphql.Deps{Jobs: a.jobs, Channels: a.channels, Webhooks: a.webhooks, Store: a.store, Hub: a.hub},
		&graphql.Config{NoIntrospection: g.Introspection != nil && !*g.Introspection, MaxDepth: g.MaxDepth, MaxComplexity: g.MaxComplexity,
			MaxAliases: g.MaxAliases, MaxDocumentBytes: g.MaxDocumentBytes, MaxSubscriptions: g.MaxSubscriptions, Log: a.log})
}

// URL is the base URL clients on this machine reach the server at.
func (a *app) URL() string {
	addr := a.listener.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	scheme := "http"
	if a.certs != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s:%d", scheme, host, addr.Port)
}

// publicURL is where clients reach errand, as the documents name it:
// http.public_url, else the address bound.
func (a *app) publicURL() string {
	if a.cfg.HTTP.PublicURL != "" {
		return a.cfg.HTTP.PublicURL
	}
	return a.URL()
}

// shutdown ends long polls and event streams and drains requests.
func (a *app) shutdown(ctx context.Context) error {
	a.cancel()
	return a.server.Shutdown(ctx)
}

// Stop stops the services in reverse order of start (the HTTP server first,
// the leader last) and closes the store after its last commit.
func (a *app) Stop(ctx context.Context) error {
	err := a.services.Stop(ctx)
	a.backing.close()
	return err
}

// serve runs errand until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	a, err := startApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err := <-a.served:
			log.Error("server stopped", "err", err)
			break wait
		case <-hup:
			a.reloadCerts()
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(cfg.HTTP.ShutdownTimeout))
	defer cancel()
	err = a.Stop(sctx)
	log.Info("stopped", "err", err)
	return err
}

// raiseFileLimit lifts the soft open-file limit to the hard one: a server with
// many SSE and WebSocket subscribers needs a file for each.
func raiseFileLimit() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}
