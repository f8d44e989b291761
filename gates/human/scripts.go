package human

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts of Approvals. Each one touches keys of a single principal
// only (one hash tag, one Cluster slot): the keys it is given and keys it
// builds from the "<prefix>:{P}:" base in ARGV. Time always comes from the
// caller's clock in ARGV, in unix milliseconds; scripts never read Redis's
// clock. Replies start with one of the r* codes of errors.go.
type scripts struct {
	create, decide, consume, list *redis.Script
}

func newScripts() scripts { return scriptsWithHeader("") }

// scriptsWithHeader prefixes every script with header. The Cluster test
// passes "#!lua\n": Redis 7 then refuses a script that touches a key of
// another slot. Production scripts carry no header because miniredis (the
// sandbox's embedded Redis) does not parse it.
func scriptsWithHeader(header string) scripts {
	return scripts{
		create:  redis.NewScript(header + createLua),
		decide:  redis.NewScript(header + decideLua),
		consume: redis.NewScript(header + consumeLua),
		list:    redis.NewScript(header + listLua),
	}
}

// createLua stores a new pending approval and indexes it by its purge
// deadline, dropping index entries whose records are gone.
// At most ARGV[5] approvals (0: no limit) may have been asked within an
// approval's lifetime: those whose purge deadline lies after ARGV[6].
// KEYS: record, index. ARGV: now, purge deadline (ms), keep (ms), id,
// limit, recent (ms), then the record's field/value pairs.
const createLua = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {3} end
local limit = tonumber(ARGV[5])
if limit > 0 then
  local n = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[6], '+inf')
  if n >= limit then return {12, n} end
end
for i = 7, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return {1}
`

// decideLua records the human's decision on a pending, unexpired approval.
// The principal comparison repeats what the key already encodes: a record
// under the wrong principal is never an answer.
// KEYS: record. ARGV: principal, now, new status, decided by.
const decideLua = `
local r = redis.call('HMGET', KEYS[1], 'principal', 'status', 'expires_ms')
if not r[1] or r[1] ~= ARGV[1] then return {2} end
if r[2] ~= 'pending' then return {4} end
local exp = tonumber(r[3])
if not exp or tonumber(ARGV[2]) >= exp then return {5} end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'decided_ms', ARGV[2], 'decided_by', ARGV[4])
return {1, redis.call('HGETALL', KEYS[1])}
`

// consumeLua uses an approved approval once, for exactly the binding it was
// asked for. The binding is compared before anything else, so a caller
// with another binding learns nothing of the approval's state.
// KEYS: record. ARGV: principal, session, tool, args digest, now.
const consumeLua = `
local r = redis.call('HMGET', KEYS[1], 'principal', 'session', 'tool', 'args_digest', 'status', 'expires_ms')
if not r[1] or r[1] ~= ARGV[1] then return {2} end
if r[2] ~= ARGV[2] or r[3] ~= ARGV[3] or r[4] ~= ARGV[4] then return {9} end
if r[5] == 'used' then return {8} end
if r[5] == 'denied' then return {7} end
local exp = tonumber(r[6])
if not exp or tonumber(ARGV[5]) >= exp then return {5} end
if r[5] == 'pending' then return {6} end
if r[5] ~= 'approved' then return {10} end
redis.call('HSET', KEYS[1], 'status', 'used', 'used_ms', ARGV[5])
return {1, redis.call('HGETALL', KEYS[1])}
`

// listLua drops index entries past their purge deadline and returns the
// records of the newest max approvals.
// KEYS: index. ARGV: base, now, max.
const listLua = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local out = {11}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)) do
  local h = redis.call('HGETALL', ARGV[1] .. 'approval:' .. id)
  if #h > 0 then out[#out + 1] = h end
end
return out
`

// runWith runs script in one pipeline with the commands extra queues: one
// round trip. When Redis does not know the script yet it is sent whole
// (EVAL), as redis.Script.Run does, without repeating extra. The errors of
// extra's commands are the caller's to read.
func runWith(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, keys []string, args []any,
	extra func(p redis.Pipeliner)) (any, error) {
	var eval *redis.Cmd
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		extra(p)
		eval = s.EvalSha(ctx, p, keys, args...)
		return nil
	})
	if isNoScript(eval.Err()) {
		return s.Eval(ctx, rdb, keys, args...).Result()
	}
	return eval.Result()
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}
