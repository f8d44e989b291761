// Package chaos is tollgate's chaos suite (`make chaos`): a real six-node
// Redis Cluster (three masters, three replicas) on loopback, two tollgate
// replicas sharing it and a third process holding the fake providers (the
// provider's record of charges is the truth the ledger is checked against),
// paid calls from several principals under faults (a master paused, a
// master killed and its replica promoted, a tollgate replica killed
// mid-call, everything restarted), then one table of the invariants that
// must hold.
//
// Plain `make test` skips it. TOLLGATE_CHAOS=full (`make chaos`: 200 calls,
// 4 principals) or short (`make chaos-short`, in CI: 120 calls, 3
// principals) runs it.
package chaos
