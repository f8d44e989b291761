// Package chaos is tollgate's chaos suite (`make chaos`): a real six-node
// Redis Cluster (three masters, three replicas) on loopback, two tollgate
// replicas sharing it and one set of fake providers, paid calls from
// several principals under faults (a master paused, a master killed and
// its replica promoted, a tollgate replica killed mid-call, everything
// restarted), then one table of the invariants that must hold.
//
// `make test` runs a short profile; TOLLGATE_CHAOS=full (what `make chaos`
// sets) runs the full one. The package also holds the durability test: an
// AOF-backed redis-server killed with SIGKILL under load loses nothing that
// was committed and acknowledged.
package chaos
