package sessions

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each one touches keys of a single principal only (one
// hash tag, one Cluster slot). Time always comes from the caller's clock in
// ARGV, in unix milliseconds; scripts never read Redis's clock. Replies are
// the code* constants of errors.go.
type scripts struct {
	check, create, link, activate, addToken, revoke, revokeJTI *redis.Script
}

func newScripts() scripts { return scriptsWithHeader("") }

// scriptsWithHeader prefixes every script with header. The Cluster test
// passes "#!lua\n": Redis 7 then also refuses a script that touches an
// undeclared key of another slot, which plain scripts may do unnoticed on a
// node serving both slots. Production scripts carry no header because
// miniredis (the sandbox's embedded Redis) does not parse it.
func scriptsWithHeader(header string) scripts {
	return scripts{
		check:     redis.NewScript(header + checkLua),
		create:    redis.NewScript(header + parentStateLua + createLua),
		link:      redis.NewScript(header + parentStateLua + linkLua),
		activate:  redis.NewScript(header + activateLua),
		addToken:  redis.NewScript(header + addTokenLua),
		revoke:    redis.NewScript(header + revokeLua),
		revokeJTI: redis.NewScript(header + revokeJTILua),
	}
}

// checkLua is the per-call check (SPEC §7 step 2), one round trip.
// KEYS: session hash, jti deny-list key. ARGV: now, principal.
// The principal comparison repeats what the key already encodes: a record
// under the wrong principal is never an answer.
const checkLua = `
local s = redis.call('HMGET', KEYS[1], 'principal', 'status', 'expires_ms')
if not s[1] or s[1] ~= ARGV[2] then return 2 end
if s[2] == 'revoked' then return 3 end
if s[2] ~= 'active' then return 2 end
local exp = tonumber(s[3])
if not exp or tonumber(ARGV[1]) >= exp then return 4 end
if redis.call('EXISTS', KEYS[2]) ~= 0 then return 5 end
return 1
`

// parentStateLua answers whether a parent session may get a child: it
// exists for principal, is active and has not expired at now.
const parentStateLua = `
local function parent_state(key, principal, now)
  local p = redis.call('HMGET', key, 'principal', 'status', 'expires_ms')
  if not p[1] or p[1] ~= principal then return 2 end
  if p[2] == 'revoked' then return 3 end
  if p[2] ~= 'active' then return 2 end
  local e = tonumber(p[3])
  if not e or now >= e then return 4 end
  return 1
end
`

// createLua writes a new session and, when its parent has the same
// principal, checks the parent and links the child in the same atomic step:
// a child cannot be created once its parent's revocation has returned. A
// retry of the same create (same principal, created and expires) answers ok.
// KEYS: sess, toks, idx [, parent sess, parent kids].
// ARGV: now, ttl, deadline, sid, principal, child member, n, n field/value
// strings, then token hashes.
const createLua = `
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local n = tonumber(ARGV[7])
local f, mine = {}, {}
for i = 8, 7 + n, 2 do
  f[#f + 1] = ARGV[i]
  f[#f + 1] = ARGV[i + 1]
  mine[ARGV[i]] = ARGV[i + 1]
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- The same create retried (go-redis retries after a network error) is
  -- not a conflict.
  local s = redis.call('HMGET', KEYS[1], 'principal', 'created_ms', 'expires_ms')
  if s[1] ~= mine['principal'] or s[2] ~= mine['created_ms'] or s[3] ~= mine['expires_ms'] then
    return 6
  end
  return 1
end
if #KEYS == 5 then
  local c = parent_state(KEYS[4], ARGV[5], now)
  if c ~= 1 then return c end
  redis.call('SADD', KEYS[5], ARGV[6])
  local pt = redis.call('PTTL', KEYS[4])
  if pt > 0 then redis.call('PEXPIRE', KEYS[5], pt) end
end
redis.call('HSET', KEYS[1], unpack(f))
redis.call('PEXPIRE', KEYS[1], ttl)
if #ARGV > 7 + n then
  local t = {}
  for i = 8 + n, #ARGV do t[#t + 1] = ARGV[i] end
  redis.call('SADD', KEYS[2], unpack(t))
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
if redis.call('PTTL', KEYS[3]) < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
return 1
`

// linkLua links a child of another principal into its parent's kids set,
// atomically with checking that the parent is still active.
// KEYS: parent sess, parent kids. ARGV: now, parent principal, child member.
const linkLua = `
local c = parent_state(KEYS[1], ARGV[2], tonumber(ARGV[1]))
if c ~= 1 then return c end
redis.call('SADD', KEYS[2], ARGV[3])
local pt = redis.call('PTTL', KEYS[1])
if pt > 0 then redis.call('PEXPIRE', KEYS[2], pt) end
return 1
`

// activateLua turns a linked pending session active, unless the cascade of
// its parent's revocation reached it first.
// KEYS: sess. ARGV: principal.
const activateLua = `
local s = redis.call('HMGET', KEYS[1], 'principal', 'status')
if not s[1] or s[1] ~= ARGV[1] then return 2 end
if s[2] == 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'active')
  return 1
end
if s[2] == 'active' then return 1 end
if s[2] == 'revoked' then return 3 end
return 2
`

// addTokenLua records a token for an active session and makes the session
// live as long as its longest-lived token.
// KEYS: sess, toks, kids, idx. ARGV: now, principal, sid, token hash,
// token exp, retention. Reply: {code, ttl ms}.
const addTokenLua = `
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'principal', 'status', 'expires_ms')
if not s[1] or s[1] ~= ARGV[2] then return {2, 0} end
if s[2] == 'revoked' then return {3, 0} end
if s[2] ~= 'active' then return {2, 0} end
local cur = tonumber(s[3])
if not cur or now >= cur then return {4, 0} end
local exp = tonumber(ARGV[5])
if exp > cur then
  redis.call('HSET', KEYS[1], 'expires_ms', ARGV[5])
  cur = exp
end
redis.call('SADD', KEYS[2], ARGV[4])
local deadline = cur + tonumber(ARGV[6])
local ttl = deadline - now
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
redis.call('ZADD', KEYS[4], 'GT', string.format('%d', deadline), ARGV[3])
if redis.call('PTTL', KEYS[4]) < ttl then redis.call('PEXPIRE', KEYS[4], ttl) end
return {1, ttl}
`

// revokeLua marks a session and every descendant under the same principal
// revoked, walking the kids sets breadth-first inside one script, so no call
// on any of them can pass after it runs. Children under other principals are
// returned for the caller to continue with (their keys are on other slots).
// Already revoked sessions keep their first revocation time and reason but
// are still walked, which makes the script idempotent and lets a retry
// finish a cascade that was interrupted.
// KEYS: root sess. ARGV: key base "<prefix>:{P}:", principal, root sid, now,
// reason. Reply: {code, {revoked sids}, {foreign members}}.
const revokeLua = `
local base, principal, now, reason = ARGV[1], ARGV[2], ARGV[4], ARGV[5]
local owner = redis.call('HGET', KEYS[1], 'principal')
if not owner or owner ~= principal then return {2, {}, {}} end
local queue, seen, done, foreign = {ARGV[3]}, {[ARGV[3]] = true}, {}, {}
local i = 1
while i <= #queue do
  local sid = queue[i]
  i = i + 1
  local key = base .. 'sess:' .. sid
  local st = redis.call('HGET', key, 'status')
  if st then
    if st ~= 'revoked' then
      redis.call('HSET', key, 'status', 'revoked', 'revoked_at_ms', now, 'revoked_reason', reason)
    end
    done[#done + 1] = sid
  end
  for _, m in ipairs(redis.call('SMEMBERS', base .. 'kids:' .. sid)) do
    local cut = string.find(m, '|[^|]*$')
    if cut then
      local p, c = string.sub(m, 1, cut - 1), string.sub(m, cut + 1)
      if p == principal then
        if not seen[c] then
          seen[c] = true
          queue[#queue + 1] = c
        end
      else
        foreign[#foreign + 1] = m
      end
    end
  end
end
return {1, done, foreign}
`

// revokeJTILua deny-lists one token id of an existing session. An existing
// entry keeps the longer of its own and the new lifetime.
// KEYS: sess, jti. ARGV: principal, sid, ttl ms.
const revokeJTILua = `
local p = redis.call('HGET', KEYS[1], 'principal')
if not p or p ~= ARGV[1] then return 2 end
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return 1
`
