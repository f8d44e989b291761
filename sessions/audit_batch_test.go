package sessions

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestBatcherKeepsOneChain: a background batcher and a synchronous
// appender on another "replica" write into one verifiable chain, and
// nothing queued is lost on Close.
func TestBatcherKeepsOneChain(t *testing.T) {
	rdb := testkit.Redis(t)
	defer rdb.Close()
	a1, err := NewAudit(rdb, AuditConfig{})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := NewAudit(rdb, AuditConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var lost int
	var mu sync.Mutex
	b := a1.NewBatcher(2*time.Millisecond, func(err error, n int) {
		mu.Lock()
		lost += n
		mu.Unlock()
		t.Errorf("batch lost %d entries: %v", n, err)
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := b.Append(ctx, Entry{Event: "tool_call", Tool: "whoami", Decision: DecisionAllow}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			if _, err := a2.Append(ctx, Entry{Event: "hold", Decision: DecisionOK}); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	b.Close()
	v, err := a1.Verify(ctx, nil)
	if err != nil || !v.OK || v.Entries != 450 || lost != 0 {
		t.Fatalf("verify %+v err %v lost %d", v, err, lost)
	}
	if _, err := b.Append(ctx, Entry{Event: "Not Valid!"}); err == nil {
		t.Fatal("a malformed entry was queued")
	}
}
