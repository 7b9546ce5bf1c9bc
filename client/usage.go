package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/errandhq/errand"
)

// UsageOptions select usage (GET /v1/usage). The zero value is the caller's
// tenant's last hour, by the minute.
type UsageOptions struct {
	// Tenant is another tenant's usage (needs usage:read@*); "" for the caller's.
	Tenant string
	// Operation, when set, is one operation's usage.
	Operation string
	// Step is errand.UsageMinute (the default) or errand.UsageHour.
	Step string
	// From and To bound the buckets; zero for the server's defaults (To: now;
	// From: an hour before, a day by the hour).
	From, To time.Time
}

// Usage reads what a tenant used, per operation and bucket (needs usage:read).
func (c *Client) Usage(ctx context.Context, o UsageOptions) (*errand.UsageReport, error) {
	q := url.Values{}
	for k, v := range map[string]string{"tenant": o.Tenant, "operation": o.Operation, "step": o.Step} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, t := range map[string]time.Time{"from": o.From, "to": o.To} {
		if !t.IsZero() {
			q.Set(k, t.UTC().Format(time.RFC3339Nano))
		}
	}
	var rep errand.UsageReport
	_, err := c.Do(ctx, http.MethodGet, "/v1/usage?"+q.Encode(), nil, nil, &rep)
	return &rep, err
}
