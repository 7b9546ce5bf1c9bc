package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/errandhq/errand"
)

// AuditPage is a page of the audit log.
type AuditPage struct {
	Entries    []*errand.AuditEntry `json:"entries"`
	NextCursor string               `json:"next_cursor"`
}

// AuditOptions select audit entries. With After set (even to "0") the log is
// followed oldest first; otherwise pages go back from Before, newest first.
type AuditOptions struct {
	Action, Subject, Outcome string
	After, Before            string
	Limit                    int
}

// Audit reads the audit log (needs audit:read).
func (c *Client) Audit(ctx context.Context, o AuditOptions) (*AuditPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"action": o.Action, "subject": o.Subject, "outcome": o.Outcome,
		"after": o.After, "before": o.Before} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var page AuditPage
	_, err := c.Do(ctx, http.MethodGet, "/v1/audit?"+q.Encode(), nil, nil, &page)
	return &page, err
}
