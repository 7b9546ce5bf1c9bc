package errand

import "time"

// Defaults of the server's knobs, each written once: config fills a file's
// unset keys from them (and validates against the result), and every
// service's Config falls back to the same constant, so the two never differ.
// Operation defaults are in operation.go.
const (
	// DefaultMaxWait caps Prefer: wait=N and lease long polls.
	DefaultMaxWait = 60 * time.Second
	// DefaultLease is a lease's length when the worker does not ask.
	DefaultLease = 60 * time.Second
	// DefaultMaxLease caps the lease a worker may ask for.
	DefaultMaxLease = time.Hour
	// DefaultMaxLeaseJobs caps the jobs one lease request (or batch completion) takes.
	DefaultMaxLeaseJobs = 1000
	// DefaultMaxBodyBytes caps request bodies (1 MiB).
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxArtifactBytes caps one artifact (100 MiB).
	DefaultMaxArtifactBytes = 100 << 20
	// DefaultCORSMaxAge is how long browsers may cache a preflight.
	DefaultCORSMaxAge = 10 * time.Minute
	// DefaultListTimeout bounds one job list (503 with Retry-After past it).
	// The byte budgets of pages and streams are in budget.go.
	DefaultListTimeout = 5 * time.Second

	// DefaultWebhookTimeout bounds one delivery attempt.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultWebhookConcurrency is how many attempts to one endpoint run at once.
	DefaultWebhookConcurrency = 16
	// DefaultWebhookDisableAfter disables an endpoint failing for this long.
	DefaultWebhookDisableAfter = 5 * 24 * time.Hour
	// DefaultWebhookRetention keeps finished deliveries and their attempts.
	DefaultWebhookRetention = 30 * 24 * time.Hour
	// DefaultRotationOverlap is how long a rotated secret keeps signing.
	DefaultRotationOverlap = 24 * time.Hour

	// DefaultTicketTTL is how long a stream ticket may wait to be used.
	DefaultTicketTTL = time.Minute
	// DefaultLeeway is the clock skew allowed on token times.
	DefaultLeeway = 30 * time.Second
	// DefaultTokenTTL is how long errand's own access tokens last.
	DefaultTokenTTL = 15 * time.Minute
	// DefaultKeyRotation is how often errand's signing key is replaced.
	DefaultKeyRotation = 30 * 24 * time.Hour
	// DefaultIssuer is errand's own token issuer and audience.
	DefaultIssuer = "errand"
	// DefaultAuditRetention keeps audit entries.
	DefaultAuditRetention = 90 * 24 * time.Hour
	// DefaultFailureWindow is the window repeated failed authentications of one
	// source are counted over.
	DefaultFailureWindow = time.Minute

	// DefaultGraphQLMaxDepth caps how deeply a GraphQL document nests fields.
	DefaultGraphQLMaxDepth = 12
	// DefaultGraphQLMaxComplexity caps a GraphQL operation's cost.
	DefaultGraphQLMaxComplexity = 5000
	// DefaultGraphQLMaxAliases caps the aliased fields of a GraphQL document.
	DefaultGraphQLMaxAliases = 30
	// DefaultGraphQLMaxDocumentBytes caps a GraphQL document's size (32 KiB).
	DefaultGraphQLMaxDocumentBytes = 32 << 10
	// DefaultGraphQLMaxSubscriptions caps the subscriptions of one GraphQL WebSocket.
	DefaultGraphQLMaxSubscriptions = 100

	// DefaultMetricsQueueInterval is the longest a scrape of /metrics reuses
	// the queue's last reading (one store query per interval at most).
	DefaultMetricsQueueInterval = 5 * time.Second
	// DefaultTracingSampleRatio is the share of new traces recorded.
	DefaultTracingSampleRatio = 1.0
	// DefaultUsageMinuteRetention keeps usage by the minute.
	DefaultUsageMinuteRetention = 48 * time.Hour
	// DefaultUsageHourRetention keeps usage by the hour.
	DefaultUsageHourRetention = 90 * 24 * time.Hour
	// DefaultUsageFlushInterval is how often a node writes the usage it counted.
	DefaultUsageFlushInterval = 5 * time.Second
)
