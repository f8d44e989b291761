package fuse_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

// Each step sees only its own keys and arguments, in order; the script
// stops at the first step that says stop, and later steps do not run.
func TestRunSlicesAndStops(t *testing.T) {
	rdb := testkit.Redis(t)
	ctx := context.Background()
	set := func(name, key, val, cont string) fuse.Step {
		return fuse.Step{Name: name, Lib: "local function twice(x) return x .. x end",
			Body: "redis.call('SET', KEYS[1], twice(ARGV[1])) return {#KEYS, #ARGV, ARGV[1]}", Continue: cont,
			Keys: []string{key}, Args: []any{val}}
	}
	res, err := fuse.Run(ctx, rdb, set("a", "{t}:a", "1", "true"), set("b", "{t}:b", "2", "r[3] == '1'"), set("c", "{t}:c", "3", "true"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != 1 || len(res.Replies) != 2 {
		t.Fatalf("stopped at %d with %d replies, want step 1 and 2 replies", res.Stopped, len(res.Replies))
	}
	r := res.Replies[1].([]any)
	if r[0] != int64(1) || r[1] != int64(1) || r[2] != "2" {
		t.Fatalf("step b saw %v, want its one key and one argument", r)
	}
	for key, want := range map[string]string{"{t}:a": "11", "{t}:b": "22"} {
		if got, _ := rdb.Get(ctx, key).Result(); got != want {
			t.Fatalf("%s = %q, want %q", key, got, want)
		}
	}
	if n, _ := rdb.Exists(ctx, "{t}:c").Result(); n != 0 {
		t.Fatal("a step after the stop ran")
	}
	res, err = fuse.Run(ctx, rdb, set("a", "{t}:a", "1", "true"), set("c", "{t}:c", "3", "true"))
	if err != nil || res.Stopped != -1 || len(res.Replies) != 2 {
		t.Fatalf("all steps: %+v, %v", res, err)
	}
}

// Two steps' helpers of the same name do not meet: each body sees its own.
func TestRunKeepsLibrariesApart(t *testing.T) {
	rdb := testkit.Redis(t)
	step := func(v string) fuse.Step {
		return fuse.Step{Name: "s", Lib: "local function v() return '" + v + "' end", Body: "return v()", Continue: "true"}
	}
	res, err := fuse.Run(context.Background(), rdb, step("x"), step("y"))
	if err != nil || res.Replies[0] != "x" || res.Replies[1] != "y" {
		t.Fatalf("replies %v, %v; want x then y", res.Replies, err)
	}
	if src := fuse.Source([]fuse.Step{step("x")}); !strings.Contains(src, "do -- step 1: s") {
		t.Fatalf("source does not name its steps:\n%s", src)
	}
}
