package graphql

import (
	"context"
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/graphql/exec"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/webhook"
)

// resolver answers the schema's fields by calling the services, as the
// caller: every permission and tenant check is the service's.
type resolver struct{ d Deps }

var _ exec.ResolverRoot = (*resolver)(nil)

func (r *resolver) Event() exec.EventResolver               { return (*eventResolver)(r) }
func (r *resolver) Job() exec.JobResolver                   { return (*jobResolver)(r) }
func (r *resolver) Mutation() exec.MutationResolver         { return (*mutationResolver)(r) }
func (r *resolver) Query() exec.QueryResolver               { return (*queryResolver)(r) }
func (r *resolver) Subscription() exec.SubscriptionResolver { return (*subscriptionResolver)(r) }
func (r *resolver) Webhook() exec.WebhookResolver           { return (*webhookResolver)(r) }

type queryResolver resolver

func (q *queryResolver) Job(ctx context.Context, id string) (*errand.Job, error) {
	return q.d.Jobs.Get(ctx, callerOf(ctx).p, id)
}

func (q *queryResolver) Jobs(ctx context.Context, operation *string, status *errand.Status, first *int, after *string) (*exec.JobConnection, error) {
	if err := positive(first); err != nil {
		return nil, err
	}
	lp := job.ListParams{Operation: deref(operation), Limit: deref(first), Cursor: deref(after)}
	if status != nil {
		lp.Status = *status
	}
	jobs, next, err := q.d.Jobs.List(ctx, callerOf(ctx).p, lp)
	if err != nil {
		return nil, err
	}
	out := &exec.JobConnection{Edges: []*exec.JobEdge{}, Nodes: jobs, PageInfo: &exec.PageInfo{HasNextPage: next != ""}}
	if out.Nodes == nil {
		out.Nodes = []*errand.Job{}
	}
	for _, j := range jobs {
		out.Edges = append(out.Edges, &exec.JobEdge{Cursor: errand.PageCursor(j.ID), Node: j})
	}
	if n := len(out.Edges); n > 0 {
		out.PageInfo.StartCursor, out.PageInfo.EndCursor = &out.Edges[0].Cursor, &out.Edges[n-1].Cursor
	}
	return out, nil
}

func (q *queryResolver) Operations(ctx context.Context) ([]*exec.Operation, error) {
	out := []*exec.Operation{}
	for _, op := range q.d.Jobs.Visible(callerOf(ctx).p) {
		out = append(out, viewOperation(op))
	}
	return out, nil
}

func (q *queryResolver) Operation(ctx context.Context, name string) (*exec.Operation, error) {
	op, err := q.d.Jobs.Describe(callerOf(ctx).p, name)
	if err != nil {
		return nil, err
	}
	return viewOperation(op), nil
}

func viewOperation(op errand.Operation) *exec.Operation {
	return &exec.Operation{Name: op.Name, Description: opt(op.Description), Route: opt(op.Route), InputSchema: op.InputSchema,
		Handler: op.Handler.Type, TimeoutSeconds: int(op.Timeout.Seconds()), MaxAttempts: op.Retry.MaxAttempts,
		Concurrency: op.Concurrency, WaitSeconds: op.Wait.Seconds(), RetentionSeconds: int(op.Retention.Seconds())}
}

func (q *queryResolver) Channels(ctx context.Context) ([]*exec.Channel, error) {
	out := []*exec.Channel{}
	for _, c := range q.d.Channels.Visible(callerOf(ctx).p) {
		out = append(out, &exec.Channel{Pattern: c.Pattern, Description: opt(c.Description),
			HistorySeconds: int(c.History.Seconds()), Schema: c.Schema})
	}
	return out, nil
}

func (q *queryResolver) ChannelEvents(ctx context.Context, channel string, after *string, first *int) (*exec.EventConnection, error) {
	seq, err := errand.ParseCursor(deref(after))
	if err != nil {
		return nil, err
	}
	limit := 100
	if first != nil {
		limit = *first
	}
	events, err := q.d.Channels.History(ctx, callerOf(ctx).p, channel, seq, limit)
	if err != nil {
		return nil, err
	}
	return eventPage(events, limit), nil
}

// eventPage is a page of events as a connection; a full page may have a next.
func eventPage(events []*errand.Event, limit int) *exec.EventConnection {
	out := &exec.EventConnection{Edges: []*exec.EventEdge{}, Nodes: events, PageInfo: &exec.PageInfo{HasNextPage: len(events) == limit}}
	if out.Nodes == nil {
		out.Nodes = []*errand.Event{}
	}
	for _, e := range events {
		out.Edges = append(out.Edges, &exec.EventEdge{Cursor: e.Cursor(), Node: e})
	}
	if n := len(out.Edges); n > 0 {
		out.PageInfo.StartCursor, out.PageInfo.EndCursor = &out.Edges[0].Cursor, &out.Edges[n-1].Cursor
	}
	return out
}

func (q *queryResolver) Me(ctx context.Context) (*errand.Principal, error) {
	p := callerOf(ctx).p
	if p.Roles == nil {
		p.Roles = []string{}
	}
	if p.Permissions == nil {
		p.Permissions = []string{}
	}
	return &p, nil
}

func (q *queryResolver) Webhooks(ctx context.Context) ([]*errand.Endpoint, error) {
	if err := q.hooks(); err != nil {
		return nil, err
	}
	return q.d.Webhooks.List(ctx, callerOf(ctx).p)
}

func (q *queryResolver) Webhook(ctx context.Context, id string) (*errand.Endpoint, error) {
	if err := q.hooks(); err != nil {
		return nil, err
	}
	return q.d.Webhooks.Get(ctx, callerOf(ctx).p, id)
}

func (q *queryResolver) Deliveries(ctx context.Context, webhookID, jobID *string, status *errand.DeliveryStatus, first *int, after *string) (*exec.DeliveryConnection, error) {
	return deliveries(ctx, q.d.Webhooks, webhook.DeliveryPage{EndpointID: deref(webhookID), JobID: deref(jobID)}, status, first, after)
}

func (q *queryResolver) Delivery(ctx context.Context, id string) (*errand.Delivery, error) {
	if err := q.hooks(); err != nil {
		return nil, err
	}
	return q.d.Webhooks.Delivery(ctx, callerOf(ctx).p, id)
}

func (q *queryResolver) hooks() error { return (*resolver)(q).hooks() }

// hooks is the error of a webhook field on an errand that serves no webhooks.
func (r *resolver) hooks() error {
	if r.d.Webhooks == nil {
		return errand.Errorf(errand.ENOTFOUND, "this errand serves no webhooks")
	}
	return nil
}

// deliveries pages deliveries selected by q.
func deliveries(ctx context.Context, hooks *webhook.Service, q webhook.DeliveryPage, status *errand.DeliveryStatus, first *int, after *string) (*exec.DeliveryConnection, error) {
	if hooks == nil {
		return nil, errand.Errorf(errand.ENOTFOUND, "this errand serves no webhooks")
	}
	if err := positive(first); err != nil {
		return nil, err
	}
	q.Limit, q.Cursor = deref(first), deref(after)
	if status != nil {
		q.Status = *status
	}
	ds, next, err := hooks.Deliveries(ctx, callerOf(ctx).p, q)
	if err != nil {
		return nil, err
	}
	out := &exec.DeliveryConnection{Edges: []*exec.DeliveryEdge{}, Nodes: ds, PageInfo: &exec.PageInfo{HasNextPage: next != ""}}
	if out.Nodes == nil {
		out.Nodes = []*errand.Delivery{}
	}
	for _, x := range ds {
		out.Edges = append(out.Edges, &exec.DeliveryEdge{Cursor: errand.PageCursor(x.ID), Node: x})
	}
	if n := len(out.Edges); n > 0 {
		out.PageInfo.StartCursor, out.PageInfo.EndCursor = &out.Edges[0].Cursor, &out.Edges[n-1].Cursor
	}
	return out, nil
}

type jobResolver resolver

func (j *jobResolver) CallbackURL(ctx context.Context, obj *errand.Job) (*string, error) {
	return opt(obj.CallbackURL), nil
}

func (j *jobResolver) Events(ctx context.Context, obj *errand.Job, after *string, first *int) (*exec.EventConnection, error) {
	limit := 100
	if first != nil {
		limit = *first
	}
	events, err := j.d.Jobs.Events(ctx, callerOf(ctx).p, obj.ID, deref(after), limit)
	if err != nil {
		return nil, err
	}
	return eventPage(events, limit), nil
}

type eventResolver resolver

// Job is the job of a job event, read as it is now; null for a channel's.
func (e *eventResolver) Job(ctx context.Context, obj *errand.Event) (*errand.Job, error) {
	if !strings.HasPrefix(obj.Stream, "job_") {
		return nil, nil
	}
	return e.d.Jobs.Get(ctx, callerOf(ctx).p, obj.Stream)
}

type webhookResolver resolver

func (w *webhookResolver) Deliveries(ctx context.Context, obj *errand.Endpoint, status *errand.DeliveryStatus, first *int, after *string) (*exec.DeliveryConnection, error) {
	return deliveries(ctx, w.d.Webhooks, webhook.DeliveryPage{EndpointID: obj.ID}, status, first, after)
}

// positive refuses a page size below one (the services read 0 as their default).
func positive(first *int) error {
	if first != nil && *first < 1 {
		return errand.Errorf(errand.EINVALID, "first must be at least 1")
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// opt is s, or nil when it is empty.
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
