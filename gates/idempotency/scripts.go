package idempotency

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each touches one record key. Time always comes from the
// caller's clock in ARGV, in unix milliseconds; scripts never read Redis's
// clock. Replies are the code* constants of errors.go.
type scripts struct{ begin, complete, abort *redis.Script }

func newScripts() scripts { return scriptsWithHeader("") }

// scriptsWithHeader prefixes every script with header; the Cluster test
// passes "#!lua\n" so that Redis also refuses undeclared keys of another
// slot. Production scripts carry no header because miniredis (the sandbox's
// embedded Redis) does not parse it.
func scriptsWithHeader(header string) scripts {
	return scripts{
		begin:    redis.NewScript(header + beginLua),
		complete: redis.NewScript(header + completeLua),
		abort:    redis.NewScript(header + abortLua),
	}
}

// beginLua decides a call (SPEC §9.2). A lock that expired by the caller's
// clock counts as no record: the call that held it crashed or overran, and
// the new call gets a new fence. The same Begin retried by go-redis after a
// network error (same fence) is Started again, not in_progress.
// KEYS: record. ARGV: now, digest, fence, lock ms.
// Reply: {1, fence} | {2, result} | {3} | {4} | {5}.
const beginLua = `
local now = tonumber(ARGV[1])
local lock = tonumber(ARGV[4])
local function start()
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'state', 'in_progress', 'digest', ARGV[2],
    'fence', ARGV[3], 'lock_until_ms', string.format('%d', now + lock))
  redis.call('PEXPIRE', KEYS[1], lock)
  return {1, ARGV[3]}
end
local r = redis.call('HMGET', KEYS[1], 'state', 'digest', 'fence', 'lock_until_ms', 'result')
if not r[1] then return start() end
if r[1] == 'in_progress' then
  if r[3] == ARGV[3] and r[2] == ARGV[2] then return {1, ARGV[3]} end
  local u = tonumber(r[4])
  if not u or now >= u then return start() end
  if r[2] ~= ARGV[2] then return {3} end
  return {4}
end
if r[1] == 'done' then
  if r[2] ~= ARGV[2] then return {3} end
  if not r[5] then return {5} end
  return {2, r[5]}
end
return {5}
`

// completeLua stores the result of the call holding the lock and keeps the
// record ttl. A retried Complete (record already done with this fence)
// answers ok.
// KEYS: record. ARGV: fence, result, ttl ms, now.
// Reply: 7 ok | 5 lost (no record, or another fence) | 6 unknown state.
const completeLua = `
local r = redis.call('HMGET', KEYS[1], 'state', 'fence')
if not r[1] or r[2] ~= ARGV[1] then return 5 end
if r[1] == 'done' then return 7 end
if r[1] ~= 'in_progress' then return 6 end
redis.call('HSET', KEYS[1], 'state', 'done', 'result', ARGV[2], 'done_ms', ARGV[4])
redis.call('HDEL', KEYS[1], 'lock_until_ms')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 7
`

// abortLua deletes the record of the call holding the lock. No record at
// all is ok (a retried Abort, or the lock already expired in Redis).
// KEYS: record. ARGV: fence.
// Reply: 7 ok | 5 lost (another fence) | 6 already done.
const abortLua = `
local r = redis.call('HMGET', KEYS[1], 'state', 'fence')
if not r[1] then return 7 end
if r[2] ~= ARGV[1] then return 5 end
if r[1] ~= 'in_progress' then return 6 end
redis.call('DEL', KEYS[1])
return 7
`
