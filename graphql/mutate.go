package graphql

import (
	"context"
	"encoding/json"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/graphql/exec"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/webhook"
)

type mutationResolver resolver

// SubmitJob submits, then waits as REST's Prefer: wait does: wait seconds
// when given (0: not at all), else the operation's default; the service caps
// it at http.max_wait.
func (m *mutationResolver) SubmitJob(ctx context.Context, operation string, input json.RawMessage, idempotencyKey *string,
	wait *int, runAt *time.Time, delaySeconds, priority, maxAttempts, timeoutSeconds *int, metadata json.RawMessage,
	callbackURL *string) (*errand.Job, error) {
	c := callerOf(ctx)
	meta, err := metadataOf(metadata)
	if err != nil {
		return nil, err
	}
	if wait != nil && *wait < 0 {
		return nil, fieldError("/wait", "seconds to wait: 0 or more")
	}
	if string(input) == "null" {
		input = nil
	}
	j, _, err := m.d.Jobs.Submit(ctx, c.p, job.SubmitParams{Operation: operation, Input: input, RunAt: runAt, Delay: delaySeconds,
		Priority: priority, Attempts: maxAttempts, Timeout: timeoutSeconds, Metadata: meta, Callback: deref(callbackURL),
		IdempotencyKey: deref(idempotencyKey)})
	if err != nil {
		return nil, err
	}
	d := m.waitFor(j.Operation, wait)
	if d <= 0 || j.Status.Terminal() {
		return j, nil
	}
	return m.d.Jobs.Wait(ctx, c.p, j.ID, d)
}

// waitFor is how long a submit waits: wait seconds, else the operation's default.
func (m *mutationResolver) waitFor(operation string, wait *int) time.Duration {
	if wait != nil {
		return time.Duration(min(*wait, 24*3600)) * time.Second // the service caps it further
	}
	op, err := m.d.Jobs.Operation(operation)
	if err != nil {
		return 0
	}
	return op.Wait
}

// metadataOf reads the metadata argument: an object of strings.
func metadataOf(raw json.RawMessage) (map[string]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fieldError("/metadata", "must be an object of strings")
	}
	return m, nil
}

func fieldError(pointer, msg string) error {
	return &errand.Error{Code: errand.EVALIDATION, Message: "the request has invalid fields",
		Fields: []errand.FieldError{{Pointer: pointer, Message: msg}}}
}

func (m *mutationResolver) CancelJob(ctx context.Context, id string) (*errand.Job, error) {
	c := callerOf(ctx)
	j, err := m.d.Jobs.Cancel(ctx, c.p, id)
	if err == nil {
		c.act(errand.PermJobsCancel, j.ID, "operation="+j.Operation)
	}
	return j, err
}

func (m *mutationResolver) RetryJob(ctx context.Context, id string) (*errand.Job, error) {
	c := callerOf(ctx)
	j, err := m.d.Jobs.Retry(ctx, c.p, id)
	if err == nil {
		c.act(errand.PermJobsRetry, j.ID, "operation="+j.Operation)
	}
	return j, err
}

func (m *mutationResolver) DeleteJob(ctx context.Context, id string) (bool, error) {
	c := callerOf(ctx)
	if err := m.d.Jobs.Delete(ctx, c.p, id); err != nil {
		return false, err
	}
	c.act(errand.PermJobsDelete, id, "")
	return true, nil
}

func (m *mutationResolver) Publish(ctx context.Context, channel, typ string, data json.RawMessage) (*errand.Event, error) {
	return m.d.Channels.Publish(ctx, callerOf(ctx).p, channel, typ, data)
}

func (m *mutationResolver) CreateWebhook(ctx context.Context, url string, events []string, description *string, rateLimit *int, disabled *bool) (*exec.WebhookWithSecret, error) {
	if err := (*resolver)(m).hooks(); err != nil {
		return nil, err
	}
	c := callerOf(ctx)
	in := webhook.EndpointInput{URL: &url, Description: description, RateLimit: rateLimit, Disabled: disabled}
	if events != nil {
		in.Events = &events
	}
	ep, err := m.d.Webhooks.Create(ctx, c.p, in)
	if err != nil {
		return nil, err
	}
	c.act("webhooks:create", ep.ID, "url="+ep.URL)
	return &exec.WebhookWithSecret{Webhook: ep, Secret: ep.Secret}, nil
}

func (m *mutationResolver) UpdateWebhook(ctx context.Context, id string, url *string, events []string, description *string, rateLimit *int, disabled *bool) (*errand.Endpoint, error) {
	if err := (*resolver)(m).hooks(); err != nil {
		return nil, err
	}
	c := callerOf(ctx)
	in := webhook.EndpointInput{URL: url, Description: description, RateLimit: rateLimit, Disabled: disabled}
	if events != nil {
		in.Events = &events
	}
	ep, err := m.d.Webhooks.Update(ctx, c.p, id, in)
	if err != nil {
		return nil, err
	}
	c.act("webhooks:update", ep.ID, "url="+ep.URL)
	return ep, nil
}

func (m *mutationResolver) DeleteWebhook(ctx context.Context, id string) (bool, error) {
	if err := (*resolver)(m).hooks(); err != nil {
		return false, err
	}
	c := callerOf(ctx)
	if err := m.d.Webhooks.Delete(ctx, c.p, id); err != nil {
		return false, err
	}
	c.act("webhooks:delete", id, "")
	return true, nil
}

func (m *mutationResolver) RotateWebhookSecret(ctx context.Context, id string) (*exec.WebhookWithSecret, error) {
	if err := (*resolver)(m).hooks(); err != nil {
		return nil, err
	}
	c := callerOf(ctx)
	ep, err := m.d.Webhooks.RotateSecret(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	c.act("webhooks:rotate-secret", ep.ID, "")
	return &exec.WebhookWithSecret{Webhook: ep, Secret: ep.Secret}, nil
}

func (m *mutationResolver) Redeliver(ctx context.Context, id string) (*errand.Delivery, error) {
	if err := (*resolver)(m).hooks(); err != nil {
		return nil, err
	}
	c := callerOf(ctx)
	x, err := m.d.Webhooks.Redeliver(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	c.act("webhooks:redeliver", id, "")
	return x, nil
}

// act records an administrative act of the caller, as REST's handlers do.
func (c *caller) act(action, resource, detail string) {
	if c.a != nil {
		c.a.Act(c.r, c.p, action, resource, detail)
	}
}
