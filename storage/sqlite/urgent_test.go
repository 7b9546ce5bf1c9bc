package sqlite_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/teststore"
	"github.com/errandhq/errand/storage"
)

// TestUrgentCutsGroup: an urgent write (a worker's completion) queued behind
// a long group of others commits before most of them, and every other call
// still runs exactly once and commits.
func TestUrgentCutsGroup(t *testing.T) {
	s := teststore.Open(t)
	ctx := context.Background()
	const calls = 60
	var runs [calls]atomic.Int32
	var done atomic.Int32
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.WithTx(ctx, func(tx storage.Tx) error {
				runs[i].Add(1)
				time.Sleep(3 * time.Millisecond) // a slow call: the group of 60 takes 180 ms
				return tx.PutSetting(fmt.Sprintf("normal.%d", i), "x")
			})
			if err != nil {
				t.Errorf("call %d: %v", i, err)
			}
			done.Add(1)
		}()
	}
	time.Sleep(20 * time.Millisecond) // the group is under way
	if err := s.WithTx(storage.Urgent(ctx), func(tx storage.Tx) error { return tx.PutSetting("urgent", "x") }); err != nil {
		t.Fatal(err)
	}
	before := done.Load()
	wg.Wait()
	if before > calls/2 {
		t.Errorf("the urgent write committed after %d of %d others: it waited for their group", before, calls)
	}
	for i := range calls {
		if n := runs[i].Load(); n != 1 {
			t.Errorf("call %d ran %d times", i, n)
		}
		err := s.WithTx(ctx, func(tx storage.Tx) error {
			_, err := tx.GetSetting(fmt.Sprintf("normal.%d", i))
			return err
		})
		if err != nil {
			t.Errorf("call %d's write: %v", i, err)
		}
	}
}
