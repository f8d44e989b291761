package spend

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each one touches keys of a single principal only (one
// hash tag, one Cluster slot): the keys it is given and keys it builds from
// the "<prefix>:{P}:" base in ARGV[1]. Time always comes from the ledger's
// clock in ARGV[2], in unix milliseconds; scripts never read Redis's clock.
// Amounts travel as decimal strings of minor units and are written with
// HINCRBY, so Lua's doubles are used only to compare (exact below 2^53, see
// MaxMinor). Replies start with one of the r* codes of errors.go.
//
// Every mutating script first expires this principal's holds whose TTL has
// passed (at most reapLimit of them), so a crashed process's hold frees its
// amount at the principal's next ledger call.
type scripts struct {
	hold, commit, release, reconcile, read, reap, list *redis.Script
	capSet, renew, endRec, readMonth                   *redis.Script
}

// reapLimit bounds how many expired holds one script expires, so that no
// script runs long. ReapExpired loops until none are left.
const reapLimit = 100

func newScripts() scripts { return scriptsWithHeader("") }

// scriptsWithHeader prefixes every script with header. The Cluster test
// passes "#!lua\n": Redis 7 then refuses a script that touches a key of
// another slot, which plain scripts may do unnoticed on a node serving both
// slots. Production scripts carry no header because miniredis (the
// sandbox's embedded Redis) does not parse it.
func scriptsWithHeader(header string) scripts {
	s := func(body string) *redis.Script { return redis.NewScript(header + libLua + body) }
	return scripts{
		hold:      s(holdLua),
		commit:    s(commitLua),
		release:   s(releaseLua),
		reconcile: s(reconcileLua),
		read:      s(readLua),
		reap:      s(reapLua),
		list:      s(listLua),
		capSet:    s(capSetLua),
		renew:     s(renewLua),
		endRec:    s(endRecurringLua),
		readMonth: s(readMonthLua),
	}
}

// libLua holds the helpers every script shares.
//
// sub takes amt from a counter, never below zero (a counter that would go
// negative means its key was lost; clamping keeps the ledger conservative),
// and never recreates a missing key. add adds to a counter, records the
// currency of a new counter and refreshes its retention. expire_hold frees
// an open hold's amount in its own month and budgets, marks it expired and
// moves it from the open to the stale index. reap expires the principal's
// open holds whose expiry is at or before now (the expiry instant itself is
// expired, as for sessions).
const libLua = `
local function sub(key, field, amt)
  local a = tonumber(amt) or 0
  if a <= 0 or redis.call('EXISTS', key) == 0 then return end
  local v = tonumber(redis.call('HGET', key, field)) or 0
  if v <= a then
    redis.call('HSET', key, field, '0')
  else
    redis.call('HINCRBY', key, field, '-' .. amt)
  end
end

local function add(key, field, amt, currency, keep)
  redis.call('HINCRBY', key, field, amt)
  redis.call('HSETNX', key, 'currency', currency)
  redis.call('PEXPIRE', key, keep)
end

local function each_budget(csv)
  return string.gmatch(csv or '', '[^,]+')
end

local function expire_hold(base, id, now)
  local key = base .. 'hold:' .. id
  local r = redis.call('HMGET', key, 'state', 'provider', 'month', 'amount', 'budgets', 'expires_ms')
  if r[1] == 'held' then
    sub(base .. 'cap:' .. r[2] .. ':' .. r[3], 'held', r[4])
    for sid in each_budget(r[5]) do
      sub(base .. 'budget:' .. sid .. ':' .. r[2], 'held', r[4])
    end
    redis.call('HSET', key, 'state', 'expired', 'settled_ms', now)
    redis.call('ZADD', base .. 'holds:stale', r[6], id)
  end
  redis.call('ZREM', base .. 'holds:open', id)
end

local function reap(base, now, limit)
  local ids = redis.call('ZRANGEBYSCORE', base .. 'holds:open', '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do expire_hold(base, id, now) end
  return #ids
end

-- load_hold reads a hold's fields and expires it first when its TTL has passed,
-- whether or not reap got to it.
local function load_hold(base, key, id, now, ...)
  local r = redis.call('HMGET', key, 'state', 'expires_ms', ...)
  if r[1] == 'held' and tonumber(r[2]) <= tonumber(now) then
    expire_hold(base, id, now)
    r[1] = 'expired'
  end
  return r
end
-- cap_of is the cap of a provider in a month: the month's raise, else the
-- principal's stored cap, else the server's default (dflt).
local function cap_of(base, provider, mon, dflt)
  local r = redis.call('HMGET', base .. 'caps', provider .. ':' .. mon, provider)
  return tonumber(r[1]) or tonumber(r[2]) or tonumber(dflt)
end

-- standing_cap is the cap of months without a raise.
local function standing_cap(base, provider, dflt)
  return tonumber(redis.call('HGET', base .. 'caps', provider)) or tonumber(dflt)
end

-- recurring sums the principal's recurring commitments at a provider:
-- pend is what is due in mon and not yet charged (next charge month <= mon),
-- total is every commitment. Each field is "<minor>|<next YYYY-MM>|...".
local function recurring(base, provider, mon)
  local all = redis.call('HGETALL', base .. 'recurring:' .. provider)
  local pend, total = 0, 0
  for i = 1, #all, 2 do
    local a, nx = string.match(all[i + 1], '^(%d+)|([^|]*)')
    a = tonumber(a) or 0
    total = total + a
    if nx and nx <= mon then pend = pend + a end
  end
  return pend, total
end
`

// holdLua places a hold (SPEC §9.1): spent + held + amount ≤ cap for the
// month, and ≤ max for every task budget, then held += amount everywhere.
// A hold id that exists answers with the existing record (a retry, or a
// replay by the caller) and never counts twice; one used for a different
// hold is a conflict.
// KEYS: hold, cap, open, stale, budget... ARGV: base, now, id, reap limit,
// keep ms, principal, provider, amount, currency, budgets csv, cap,
// expires ms, n, n field/value strings of the record, then one max per
// budget key.
const holdLua = `
local base, now, id = ARGV[1], ARGV[2], ARGV[3]
reap(base, now, tonumber(ARGV[4]))
local h = redis.call('HMGET', KEYS[1], 'principal', 'provider', 'amount', 'currency', 'budgets')
if h[1] then
  if h[1] ~= ARGV[6] or h[2] ~= ARGV[7] or h[3] ~= ARGV[8] or h[4] ~= ARGV[9] or (h[5] or '') ~= ARGV[10] then
    return {5}
  end
  load_hold(base, KEYS[1], id, now)
  return {2, redis.call('HGETALL', KEYS[1])}
end
local amount = tonumber(ARGV[8])
local n = tonumber(ARGV[13])
local nb = #KEYS - 4
local mon, recur, nextmon = ARGV[14 + n + nb], tonumber(ARGV[15 + n + nb]) or 0, ARGV[16 + n + nb]
local c = redis.call('HMGET', KEYS[2], 'spent', 'held', 'currency')
if c[3] and c[3] ~= ARGV[9] then return {6, c[3]} end
local capv = cap_of(base, ARGV[7], mon, ARGV[11])
local pend, total = recurring(base, ARGV[7], mon)
if (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0) + pend + amount > capv then
  return {3, c[1] or '0', c[2] or '0', string.format('%.0f', capv), string.format('%.0f', pend), string.format('%.0f', total)}
end
if recur > 0 then
  local std = standing_cap(base, ARGV[7], ARGV[11])
  if total + recur > std then
    return {20, string.format('%.0f', total), string.format('%.0f', std)}
  end
end
for i = 5, #KEYS do
  local b = redis.call('HMGET', KEYS[i], 'spent', 'held', 'currency')
  if b[3] and b[3] ~= ARGV[9] then return {7, i - 4, b[3]} end
  if (tonumber(b[1]) or 0) + (tonumber(b[2]) or 0) + amount > tonumber(ARGV[13 + n + i - 4]) then
    return {4, i - 4, b[1] or '0', b[2] or '0'}
  end
end
local keep = ARGV[5]
add(KEYS[2], 'held', ARGV[8], ARGV[9], keep)
for i = 5, #KEYS do add(KEYS[i], 'held', ARGV[8], ARGV[9], keep) end
local f = {}
for i = 14, 13 + n do f[#f + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(f))
redis.call('ZADD', KEYS[3], ARGV[12], id)
if recur > 0 then
  redis.call('HSET', base .. 'recurring:' .. ARGV[7], id, ARGV[15 + n + nb] .. '|' .. nextmon .. '|')
  redis.call('HSET', KEYS[1], 'recurring', ARGV[15 + n + nb])
end
return {1, redis.call('HGETALL', KEYS[1])}
`

// commitLua moves the actual amount (≤ the hold) from held to spent in the
// hold's own month and budgets, and frees the rest. Committing again with
// the same actual answers ok; with another, a conflict.
// KEYS: hold, open, stale. ARGV: base, now, id, reap limit, keep ms,
// actual, currency.
const commitLua = `
local base, now, id = ARGV[1], ARGV[2], ARGV[3]
reap(base, now, tonumber(ARGV[4]))
local r = load_hold(base, KEYS[1], id, now, 'amount', 'currency', 'provider', 'month', 'budgets', 'actual')
if not r[1] then return {8} end
local rec = function() return redis.call('HGETALL', KEYS[1]) end
if r[1] == 'expired' then return {10, rec()} end
if r[1] == 'released' then return {11, rec()} end
if r[4] ~= ARGV[7] then return {14, rec()} end
if r[1] == 'committed' then
  if r[8] == ARGV[6] then return {9, rec()} end
  return {12, rec()}
end
if r[1] ~= 'held' then return {19, rec()} end
if tonumber(ARGV[6]) > tonumber(r[3]) then return {13, rec()} end
local keep = ARGV[5]
local cap = base .. 'cap:' .. r[5] .. ':' .. r[6]
sub(cap, 'held', r[3])
add(cap, 'spent', ARGV[6], r[4], keep)
for sid in each_budget(r[7]) do
  local k = base .. 'budget:' .. sid .. ':' .. r[5]
  sub(k, 'held', r[3])
  add(k, 'spent', ARGV[6], r[4], keep)
end
redis.call('HSET', KEYS[1], 'state', 'committed', 'actual', ARGV[6], 'settled_ms', now)
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('ZREM', KEYS[2], id)
return {9, rec()}
`

// releaseLua frees an open hold's amount. Releasing a released hold answers
// ok; releasing an expired one reconciles it (nothing was charged: its
// amount is already free) and takes it off the stale index; a committed
// hold cannot be released.
// KEYS: hold, open, stale. ARGV: base, now, id, reap limit, keep ms, reason.
const releaseLua = `
local base, now, id = ARGV[1], ARGV[2], ARGV[3]
reap(base, now, tonumber(ARGV[4]))
local r = load_hold(base, KEYS[1], id, now, 'amount', 'provider', 'month', 'budgets')
if not r[1] then return {8} end
local rec = function() return redis.call('HGETALL', KEYS[1]) end
local keep = ARGV[5]
if r[1] == 'released' then return {9, rec()} end
if r[1] == 'committed' then return {12, rec()} end
if r[1] == 'expired' then
  redis.call('HDEL', base .. 'recurring:' .. r[4], id)
  redis.call('HSET', KEYS[1], 'state', 'released', 'reason', ARGV[6], 'reconciled_ms', now)
  redis.call('ZREM', KEYS[3], id)
  redis.call('PEXPIRE', KEYS[1], keep)
  return {9, rec()}
end
if r[1] ~= 'held' then return {19, rec()} end
sub(base .. 'cap:' .. r[4] .. ':' .. r[5], 'held', r[3])
for sid in each_budget(r[6]) do
  sub(base .. 'budget:' .. sid .. ':' .. r[4], 'held', r[3])
end
redis.call('HDEL', base .. 'recurring:' .. r[4], id)
redis.call('HSET', KEYS[1], 'state', 'released', 'reason', ARGV[6], 'settled_ms', now)
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('ZREM', KEYS[2], id)
return {9, rec()}
`

// reconcileLua records what the provider really charged for an expired
// hold: actual (≤ the hold) is added to spent in the hold's month and
// budgets, and the hold becomes committed and leaves the stale index.
// Reconciling again with the same actual answers ok.
// KEYS: hold, open, stale. ARGV: base, now, id, reap limit, keep ms,
// actual, currency, note.
const reconcileLua = `
local base, now, id = ARGV[1], ARGV[2], ARGV[3]
reap(base, now, tonumber(ARGV[4]))
local r = load_hold(base, KEYS[1], id, now, 'amount', 'currency', 'provider', 'month', 'budgets', 'actual')
if not r[1] then return {8} end
local rec = function() return redis.call('HGETALL', KEYS[1]) end
if r[1] == 'held' then return {15, rec()} end
if r[1] == 'released' then return {11, rec()} end
if r[4] ~= ARGV[7] then return {14, rec()} end
if r[1] == 'committed' then
  if r[8] == ARGV[6] then return {9, rec()} end
  return {12, rec()}
end
if r[1] ~= 'expired' then return {19, rec()} end
if tonumber(ARGV[6]) > tonumber(r[3]) then return {13, rec()} end
local keep = ARGV[5]
add(base .. 'cap:' .. r[5] .. ':' .. r[6], 'spent', ARGV[6], r[4], keep)
for sid in each_budget(r[7]) do
  add(base .. 'budget:' .. sid .. ':' .. r[5], 'spent', ARGV[6], r[4], keep)
end
redis.call('HSET', KEYS[1], 'state', 'committed', 'actual', ARGV[6], 'reason', ARGV[8], 'reconciled_ms', now)
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('ZREM', KEYS[3], id)
return {9, rec()}
`

// readLua expires what is due, then reads one counter hash (a month's cap
// counters or a task budget's).
// KEYS: counters, open. ARGV: base, now, reap limit.
const readLua = `
reap(ARGV[1], ARGV[2], tonumber(ARGV[3]))
local c = redis.call('HMGET', KEYS[1], 'spent', 'held', 'currency')
return {16, c[1] or '0', c[2] or '0', c[3] or ''}
`

// reapLua expires up to the limit of the principal's due holds and answers
// how many it expired.
// KEYS: open, stale. ARGV: base, now, reap limit.
const reapLua = `
return {17, reap(ARGV[1], ARGV[2], tonumber(ARGV[3]))}
`

// listLua expires what is due, then returns the records of the principal's
// open holds and of its expired, unreconciled ones, each by expiry, at most
// max of each.
// KEYS: open, stale. ARGV: base, now, reap limit, max.
const listLua = `
reap(ARGV[1], ARGV[2], tonumber(ARGV[3]))
local out = {18}
for _, z in ipairs({KEYS[1], KEYS[2]}) do
  for _, id in ipairs(redis.call('ZRANGE', z, 0, tonumber(ARGV[4]) - 1)) do
    local h = redis.call('HGETALL', ARGV[1] .. 'hold:' .. id)
    if #h > 0 then out[#out + 1] = h end
  end
end
return out
`

// capSetLua stores a cap (field provider, or provider:YYYY-MM for one
// month's raise) and answers the cap it replaced (” when none was stored).
// A raise (ARGV[4] == '1') only ever goes up: it is refused (code 22) when
// the stored value is already at or above it, so a raise accepted twice
// is applied once.
// KEYS: caps. ARGV: field, minor, keep ms, raise.
const capSetLua = `
local old = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if ARGV[4] == '1' and old ~= '' and tonumber(old) >= tonumber(ARGV[2]) then
  return {22, old}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {21, old}
`

// renewLua records a renewal the provider charged: the amount is added to
// spent in the month of the invoice's period, the commitment's next charge
// month moves on, and the charge is listed for reconciliation. It is
// idempotent per invoice id (code 24 on a replay). An unknown commitment
// is still recorded (the money is gone) and answered with code 25.
// KEYS: month counters, recurring, charges of the month. ARGV: commitment
// id, invoice id, amount, currency, next month, keep ms, ref.
const renewLua = `
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return {24} end
add(KEYS[1], 'spent', ARGV[3], ARGV[4], ARGV[6])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3] .. '|' .. ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then return {25} end
local a, nx, ref = string.match(cur, '^(%d+)|([^|]*)|?(.*)$')
if ARGV[5] > nx then
  redis.call('HSET', KEYS[2], ARGV[1], a .. '|' .. ARGV[5] .. '|' .. (ref or ''))
end
return {23}
`

// endRecurringLua ends a commitment (a cancelled subscription): answers 1
// when it existed.
// KEYS: recurring. ARGV: commitment id.
const endRecurringLua = `
return {26, redis.call('HDEL', KEYS[1], ARGV[1])}
`

// readMonthLua expires what is due, then reads a month's counters, its
// effective cap and the recurring commitments at the provider.
// KEYS: counters, open. ARGV: base, now, reap limit, provider, month,
// default cap.
const readMonthLua = `
reap(ARGV[1], ARGV[2], tonumber(ARGV[3]))
local c = redis.call('HMGET', KEYS[1], 'spent', 'held', 'currency')
local pend, total = recurring(ARGV[1], ARGV[4], ARGV[5])
return {16, c[1] or '0', c[2] or '0', c[3] or '', string.format('%.0f', cap_of(ARGV[1], ARGV[4], ARGV[5], ARGV[6])), string.format('%.0f', pend), string.format('%.0f', total)}
`

// bindLua binds a subscription to its committed first period: the
// binding, the first invoice as the month's charge (first note wins) and
// the subscription id as the commitment's ref. Answers 28 when the hold
// is not committed (nothing written).
// KEYS: hold, subs. ARGV: base, subscription id, binding JSON, invoice,
// keep ms, hold id.
const bindLua = `
local r = redis.call('HMGET', KEYS[1], 'state', 'provider', 'month', 'actual')
if r[1] ~= 'committed' then return {28} end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local ck = ARGV[1] .. 'charges:' .. r[2] .. ':' .. r[3]
if redis.call('HSETNX', ck, ARGV[4], (r[4] or '0') .. '|' .. ARGV[2]) == 1 then
  redis.call('PEXPIRE', ck, ARGV[5])
end
local rk = ARGV[1] .. 'recurring:' .. r[2]
local cur = redis.call('HGET', rk, ARGV[6])
if cur then
  local a, nx = string.match(cur, '^(%d+)|([^|]*)')
  redis.call('HSET', rk, ARGV[6], a .. '|' .. nx .. '|' .. ARGV[2])
end
return {27}
`

// noteLua lists a committed hold as a charge of its month for reconcile:
// the provider, month and amount come from the hold itself, never from
// the caller. First note wins (a replay changes nothing). Answers 30 when
// the hold is not committed (nothing written), else 29 and 1 when the
// note is new, 0 when it was there.
// KEYS: hold. ARGV: base, charge key, ref, keep ms.
const noteLua = `
local r = redis.call('HMGET', KEYS[1], 'state', 'provider', 'month', 'actual')
if r[1] ~= 'committed' then return {30} end
local ck = ARGV[1] .. 'charges:' .. r[2] .. ':' .. r[3]
if redis.call('HSETNX', ck, ARGV[2], (r[4] or '0') .. '|' .. ARGV[3]) == 1 then
  redis.call('PEXPIRE', ck, ARGV[4])
  return {29, 1}
end
return {29, 0}
`
