package loopguard

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each touches keys of one principal only (one hash tag,
// one Cluster slot). Time always comes from the caller's clock in ARGV, in
// unix milliseconds; scripts never read Redis's clock. Replies are
// {code, time ms} with the code* constants of errors.go.
type scripts struct{ allow, refused *redis.Script }

func newScripts() scripts { return scriptsWithHeader("") }

// scriptsWithHeader prefixes every script with header; the Cluster test
// passes "#!lua\n" so that Redis also refuses undeclared keys of another
// slot. Production scripts carry no header because miniredis (the sandbox's
// embedded Redis) does not parse it.
func scriptsWithHeader(header string) scripts {
	return scripts{
		allow:   redis.NewScript(header + allowLua),
		refused: redis.NewScript(header + refusedLua),
	}
}

// allowLua is the per-call check (SPEC §7 step 5): cooldown first, then the
// session's and the principal's sliding windows; only an allowed call is
// logged. A call stays in the window while now - window < its time. The
// reply's time is when the call may be retried: the cooldown's end, or when
// enough logged calls have left the window.
// KEYS: cooldown, session log, principal log.
// ARGV: now, window ms, per-session limit, per-principal limit, member.
const allowLua = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local untilms = tonumber(redis.call('GET', KEYS[1]) or '')
if untilms and now < untilms then return {2, untilms} end
local floor = now - window
local function full(key, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', floor)
  local n = redis.call('ZCARD', key)
  if n < limit then return false end
  local e = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  return tonumber(e[2]) + window
end
local r = full(KEYS[2], tonumber(ARGV[3]))
if r then return {3, r} end
r = full(KEYS[3], tonumber(ARGV[4]))
if r then return {4, r} end
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZADD', KEYS[3], now, ARGV[5])
redis.call('PEXPIRE', KEYS[2], window)
redis.call('PEXPIRE', KEYS[3], window)
return {1, 0}
`

// refusedLua logs a refused call; the limit-th within the repeat window
// starts the cooldown and clears the log. The member is unique per report,
// so a report retried by go-redis after a network error counts once.
// KEYS: refused log, cooldown.
// ARGV: now, repeat window ms, repeat limit, cooldown ms, member.
const refusedLua = `
local now = tonumber(ARGV[1])
local rw = tonumber(ARGV[2])
local cd = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - rw)
redis.call('ZADD', KEYS[1], now, ARGV[5])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local u = now + cd
  redis.call('SET', KEYS[2], string.format('%d', u), 'PX', cd)
  redis.call('DEL', KEYS[1])
  return {5, u}
end
redis.call('PEXPIRE', KEYS[1], rw)
return {1, 0}
`
