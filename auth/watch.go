package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand"
)

// watches are the contexts Bind handed out for principals with an API key, by
// key id, so that revoking the key ends them.
type watches struct {
	changed chan struct{} // an API key changed somewhere: check the watched ones

	mu    sync.Mutex
	byKey map[string]*keyWatch
}

// keyWatch is one watched key: its tenant (to read it) and what ends with it.
type keyWatch struct {
	tenant string
	ends   map[*int]context.CancelCauseFunc
}

func newWatches() *watches {
	return &watches{changed: make(chan struct{}, 1), byKey: map[string]*keyWatch{}}
}

// notify asks the authenticator's loop to check the watched keys; it never blocks.
func (w *watches) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watches) add(keyID, tenant string, end context.CancelCauseFunc) (remove func()) {
	token := new(int)
	w.mu.Lock()
	kw := w.byKey[keyID]
	if kw == nil {
		kw = &keyWatch{tenant: tenant, ends: map[*int]context.CancelCauseFunc{}}
		w.byKey[keyID] = kw
	}
	kw.ends[token] = end
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if kw := w.byKey[keyID]; kw != nil {
			delete(kw.ends, token)
			if len(kw.ends) == 0 {
				delete(w.byKey, keyID)
			}
		}
	}
}

// Bind returns a context that ends when p's credential does: when its API key
// (or the key its OAuth token was made from) is revoked or expires, or when its
// token expires. context.Cause then is an *errand.Error with code unauthorized
// saying which. A revocation on any node is seen at once when the store reports
// it (Committed), else within KeyCacheTTL (a key revoked on the store directly,
// by the command line). Keys of the configuration never end. Event streams hold
// it for as long as they are open; cancel releases it.
func (a *Authenticator) Bind(ctx context.Context, p *errand.Principal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	var stops []func()
	if exp := p.Credential.ExpiresAt; exp != nil {
		end := unauthorized(fmt.Sprintf("the credential expired at %s", exp.UTC().Format(time.RFC3339)))
		t := time.AfterFunc(exp.Sub(a.cfg.Now()), func() { cancel(end) })
		stops = append(stops, func() { t.Stop() })
	}
	if id := p.Credential.KeyID; id != "" && !strings.HasPrefix(id, "config:") {
		stops = append(stops, a.watch.add(id, p.Tenant, cancel))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel(context.Canceled)
	}
}

// checkWatched reads the watched keys again and ends what those revoked or
// expired hold open.
func (a *Authenticator) checkWatched(ctx context.Context) {
	a.watch.mu.Lock()
	tenants := map[string][]string{}
	for id, kw := range a.watch.byKey {
		tenants[kw.tenant] = append(tenants[kw.tenant], id)
	}
	a.watch.mu.Unlock()
	now := a.cfg.Now()
	for tenant, ids := range tenants {
		keys, err := a.store.ListAPIKeys(ctx, tenant)
		if err != nil {
			if ctx.Err() == nil {
				a.cfg.Log.Warn("check revoked api keys", "tenant", tenant, "err", err)
			}
			continue
		}
		byID := map[string]*errand.APIKey{}
		for _, k := range keys {
			byID[k.ID] = k
		}
		for _, id := range ids {
			switch k := byID[id]; {
			case k == nil:
				a.watch.end(id, unauthorized("the API key no longer exists"))
			case k.RevokedAt != nil:
				a.watch.end(id, unauthorized("the API key was revoked"))
			case !k.Active(now):
				a.watch.end(id, unauthorized("the API key has expired"))
			}
		}
	}
}

// end cancels, with cause, everything bound to key id.
func (w *watches) end(id string, cause error) {
	w.mu.Lock()
	kw := w.byKey[id]
	delete(w.byKey, id)
	w.mu.Unlock()
	if kw == nil {
		return
	}
	for _, cancel := range kw.ends {
		cancel(cause)
	}
}
