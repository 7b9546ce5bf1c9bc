// Package lifecycle is the one shape of errand's background parts. Each has
// Start(ctx) error, which begins its work and returns once it runs, and
// Stop(ctx) error, which ends it and waits until it has ended or ctx is done.
// cmd/errand starts them in one Group, in order, and stops them in reverse.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Service is a part that runs in the background.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Loop runs a service's goroutines: Go starts them on a context that Halt
// cancels (it keeps ctx's values, not its cancellation: the caller's request
// or command ending must not stop a service), Halt waits for them. The zero
// value is ready; embed it or keep one per service.
type Loop struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Go runs each fn on a goroutine of its own until Halt. Calling it again while
// running adds goroutines to the same run.
func (l *Loop) Go(ctx context.Context, fns ...func(ctx context.Context)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel == nil {
		l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	}
	for _, fn := range fns {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); fn(l.ctx) }()
	}
}

// Context is the running loop's context (done once Halt is called), or nil
// before Go: for work a running service starts later, on demand.
func (l *Loop) Context() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx
}

// Add counts one more goroutine the service starts itself on Context(); it
// must call the returned function when it ends. It reports false (and counts
// nothing) when the loop is not running.
func (l *Loop) Add() (done func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil || l.ctx.Err() != nil {
		return nil, false
	}
	l.wg.Add(1)
	return l.wg.Done, true
}

// Halt cancels the loop's context and waits until its goroutines return, or
// until ctx is done (then it returns ctx's error; they still end on their own).
func (l *Loop) Halt(ctx context.Context) error {
	l.mu.Lock()
	cancel := l.cancel
	l.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Group starts services in the order they were added and stops them in
// reverse: each starts after what it depends on, and stops before it.
type Group struct {
	names   []string
	svcs    []Service
	started int
}

// Add appends a service; name says which one failed.
func (g *Group) Add(name string, s Service) {
	g.names = append(g.names, name)
	g.svcs = append(g.svcs, s)
}

// Start starts every service in order. When one fails, those already started
// are stopped (in reverse) and the error names the one that failed.
func (g *Group) Start(ctx context.Context) error {
	for i := g.started; i < len(g.svcs); i++ {
		if err := g.svcs[i].Start(ctx); err != nil {
			stopErr := g.Stop(context.WithoutCancel(ctx))
			return errors.Join(fmt.Errorf("start %s: %w", g.names[i], err), stopErr)
		}
		g.started = i + 1
	}
	return nil
}

// Stop stops the started services in reverse order, each given what is left
// of ctx, and reports every failure by name.
func (g *Group) Stop(ctx context.Context) error {
	var errs []error
	for i := g.started - 1; i >= 0; i-- {
		if err := g.svcs[i].Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", g.names[i], err))
		}
	}
	g.started = 0
	return errors.Join(errs...)
}

// Func makes a Service of two functions (either may be nil), for parts whose
// start or stop is a single call.
type Func struct {
	OnStart func(ctx context.Context) error
	OnStop  func(ctx context.Context) error
}

// Start calls OnStart.
func (f Func) Start(ctx context.Context) error {
	if f.OnStart == nil {
		return nil
	}
	return f.OnStart(ctx)
}

// Stop calls OnStop.
func (f Func) Stop(ctx context.Context) error {
	if f.OnStop == nil {
		return nil
	}
	return f.OnStop(ctx)
}
