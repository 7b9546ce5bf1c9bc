package lifecycle

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

type recorder struct {
	name string
	log  *[]string
	fail bool
}

func (r recorder) Start(context.Context) error {
	if r.fail {
		return errors.New("boom")
	}
	*r.log = append(*r.log, "start "+r.name)
	return nil
}

func (r recorder) Stop(context.Context) error {
	*r.log = append(*r.log, "stop "+r.name)
	return nil
}

func TestGroupOrder(t *testing.T) {
	var log []string
	var g Group
	for _, n := range []string{"a", "b", "c"} {
		g.Add(n, recorder{name: n, log: &log})
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}
	if !slices.Equal(log, want) {
		t.Fatalf("order %v, want %v", log, want)
	}
}

func TestGroupStartFails(t *testing.T) {
	var log []string
	var g Group
	g.Add("a", recorder{name: "a", log: &log})
	g.Add("b", recorder{name: "b", log: &log, fail: true})
	g.Add("c", recorder{name: "c", log: &log})
	err := g.Start(context.Background())
	if err == nil || err.Error() != "start b: boom" {
		t.Fatalf("Start = %v, want start b: boom", err)
	}
	if want := []string{"start a", "stop a"}; !slices.Equal(log, want) {
		t.Fatalf("order %v, want %v (what started is stopped)", log, want)
	}
}

func TestLoop(t *testing.T) {
	var l Loop
	if err := l.Halt(context.Background()); err != nil {
		t.Fatalf("Halt before Go: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	l.Go(ctx, func(ctx context.Context) { <-ctx.Done(); close(ended) })
	cancel() // the starter's context ending does not stop the loop
	select {
	case <-ended:
		t.Fatal("the loop stopped with its starter's context")
	case <-time.After(50 * time.Millisecond):
	}
	done, ok := l.Add()
	if !ok {
		t.Fatal("Add on a running loop")
	}
	go func() { <-l.Context().Done(); time.Sleep(20 * time.Millisecond); done() }()
	if err := l.Halt(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-ended
	if _, ok := l.Add(); ok {
		t.Fatal("Add after Halt counted a goroutine")
	}
	stuck := &Loop{}
	stuck.Go(context.Background(), func(context.Context) { time.Sleep(time.Second) })
	short, c2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer c2()
	if err := stuck.Halt(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Halt past its deadline = %v, want DeadlineExceeded", err)
	}
}
