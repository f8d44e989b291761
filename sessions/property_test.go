package sessions

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// A random sequence of creations (under random parents and principals),
// revocations and token revocations, checked against a model after every
// few steps: a session is revoked exactly when it or an ancestor was
// revoked, a revocation returns exactly the subtree, no child is born under
// a revoked parent, and Check agrees with all of it.
func TestRevocationProperty(t *testing.T) {
	principals := []string{alice, bob, "user:m}{x", agent}
	for seed := range 6 {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(uint64(seed), 42))
			type node struct {
				s        Session
				parent   int
				revoked  bool // directly
				deniedJT bool
			}
			var nodes []*node
			revoked := func(i int) bool {
				for ; i >= 0; i = nodes[i].parent {
					if nodes[i].revoked {
						return true
					}
				}
				return false
			}
			subtree := func(root int) []string {
				var out []string
				for i := range nodes {
					for j := i; j >= 0; j = nodes[j].parent {
						if j == root {
							out = append(out, nodes[i].s.ID)
							break
						}
					}
				}
				slices.Sort(out)
				return out
			}
			verify := func(step int) {
				for i, n := range nodes {
					var want fault.Code
					switch {
					case revoked(i):
						want = fault.SessionRevoked
					case n.deniedJT:
						want = TokenRevoked
					}
					if err := f.check(n.s); fault.CodeOf(err) != want && !(want == "" && err == nil) {
						t.Fatalf("step %d: session %d (%s): check %v, want %q", step, i, n.s.Principal, err, want)
					}
				}
			}
			for step := range 150 {
				switch op := rng.IntN(10); {
				case op < 6 || len(nodes) == 0:
					parent := -1
					if len(nodes) > 0 && rng.IntN(5) > 0 {
						parent = rng.IntN(len(nodes))
					}
					in := Session{Principal: principals[rng.IntN(len(principals))], Expires: f.clock.Now().Add(time.Hour)}
					if parent >= 0 {
						in.Parent, in.ParentPrincipal = nodes[parent].s.ID, nodes[parent].s.Principal
					}
					s, err := f.store.Create(ctx, in)
					if parent >= 0 && revoked(parent) {
						wantCode(t, err, fault.SessionRevoked)
						continue
					}
					wantCode(t, err, "")
					nodes = append(nodes, &node{s: s, parent: parent})
				case op < 8:
					i := rng.IntN(len(nodes))
					got, err := f.store.Revoke(ctx, nodes[i].s.Principal, nodes[i].s.ID, "property")
					wantCode(t, err, "")
					slices.Sort(got)
					if want := subtree(i); !slices.Equal(got, want) {
						t.Fatalf("step %d: revoking %d returned %v, want %v", step, i, got, want)
					}
					nodes[i].revoked = true
				default:
					i := rng.IntN(len(nodes))
					n := nodes[i]
					wantCode(t, f.store.RevokeJTI(ctx, n.s.Principal, n.s.ID, "jti-"+n.s.ID, f.clock.Now().Add(time.Hour)), "")
					n.deniedJT = true
				}
				if step%10 == 0 {
					verify(step)
				}
			}
			verify(150)
		})
	}
}
