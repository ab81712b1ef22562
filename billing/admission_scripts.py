"""The two atomic steps of admission, as Redis Lua scripts.

Without REDIS_URL the same scripts run in an embedded fakeredis (`llm.redis_clients`),
so there is one implementation. `billing.admission` builds the arguments and runs them (EVALSHA,
one round trip).

Time is Redis's own (`TIME`), so gateway hosts with skewed clocks share exact windows; a caller may
pass `now` instead (tests). Every key lifetime is relative (EXPIRE/PEXPIRE).

State per organisation (every key carries the hash tag `{o:<org>}`, so one slot holds it all):
- `rl:<scope>:<window>`  a sliding window: a hash of 60 buckets of period/60 seconds, `t` their
  total and `o` the oldest bucket that may hold a count. A request is admitted when the buckets
  overlapping the last `period` seconds, plus its amount, stay within the limit: no span of
  `period` seconds ever holds more than the limit (no 2x burst at a boundary); a slot frees up to
  one bucket late.
- `m:<YYYYMM>`  hash of the calendar month: `req`, `tok`, `usd` (settled usage, nano-dollars)
  and `k:<key>:usd` per API key, `r:<field>` what live reservations hold, `init` / `k:<key>:init`
  once the month was loaded from the database;
- `res`  hash reservation id -> "<month key>\\t<field>\\t<amount>...", `resx` zset id -> expiry.
Every admission first sweeps reservations past their expiry, so a crashed process's holds stop
counting before anything is checked against them.

Two keys are the process's, not the organisation's (billing/inflight.py): the hash of usage rows
held beside its reservations, and the heartbeat zset; and SETTLE adds the record to the usage
stream. So admitting (with its held row) and settling (with the held row's removal and the usage
record) are one command each: one round trip, and all or nothing.

ADMIT  KEYS: month, res, resx, held rows, heartbeats, window...  ARGV: now or "", res id,
       res TTL (s), month TTL (s), key field prefix ("k:<id>:" or ""), init flag, init req, tok,
       usd, key usd, meter count, (field, limit or -1, amount) per meter, (limit, amount,
       period s) per window, then the held row ("" for none), the process id and its beat time:
       an admitted request's row is held under its reservation id. Returns {"init"} (load the
       month first), or {"ok" or "no", now (a string), then integers (Lua's numbers as they
       are, not formatted in the script): meters' used+reserved..., then per window its count
       before this request and the milliseconds until the request would fit (refused) or until
       its oldest bucket frees (admitted)}.
SETTLE KEYS: res, resx, month, held rows, usage stream, token window...  ARGV: res id, key
       field prefix, requests, tokens, nano-dollars to add as used, delta for the token windows,
       the time the request was admitted, the usage record ("" for none: the caller queues it),
       then the period (s) of each token window. The held row goes; the record is added to the
       stream. It reads no clock: a window's correction goes by the admission's time.
"""

from __future__ import annotations

import math

_UNDO = """
local function undo(v)
  local parts = {}
  for p in string.gmatch(v, '[^\\t]+') do parts[#parts + 1] = p end
  for i = 2, #parts, 2 do
    local left = redis.call('HINCRBY', parts[1], parts[i], '-' .. parts[i + 1])
    if left < 0 then redis.call('HSET', parts[1], parts[i], 0) end
  end
end
"""

_WINDOWS = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function sweep(res, resx)
  local ids = redis.call('ZRANGEBYSCORE', resx, '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(ids) do
    local v = redis.call('HGET', res, id)
    if v then
      undo(v)
      redis.call('HDEL', res, id)
    end
    redis.call('ZREM', resx, id)
  end
end
-- A window's buckets that no longer overlap the last `period` seconds leave its total. Returns
-- the bucket size, the current bucket, the oldest, the total, the current bucket's count and
-- name, the oldest's name (false: not known), and the oldest as stored (false: no window was).
-- Names are kept as read: Lua turns a number into a string with a printf.
local function slide(key, period)
  local g = period / 60
  local cur = math.floor(now / g)
  local first, cs = cur - 60, tostring(cur)
  local v = redis.call('HMGET', key, 'o', 't', cs)
  local o, t, c = tonumber(v[1]), tonumber(v[2] or '0'), tonumber(v[3] or '0')
  if not o or o + 61 < first then
    if o then redis.call('DEL', key) end
    return g, cur, cur, 0, 0, cs, cs, false
  end
  local was = o
  while o < first do
    local c = redis.call('HGET', key, tostring(o))
    if c then
      t = t - tonumber(c)
      redis.call('HDEL', key, tostring(o))
    end
    o = o + 1
  end
  if t < 0 then t = 0 end
  return g, cur, o, t, c, cs, was == o and v[1], was
end
-- Milliseconds until `need` of the window's count has left it, and the first bucket from `o` on
-- that the hash holds. The buckets before that one are missing (nothing counted in them), so the
-- window's oldest moves up to it: after a quiet spell the next request does not read them again.
local function wait_ms(key, g, cur, o, os, need)
  local dropped, held = 0, nil
  for b = o, cur do
    local v = redis.call('HGET', key, b == o and os or tostring(b))
    if v then
      held = held or b
      local c = tonumber(v)
      dropped = dropped + c
      if c > 0 and dropped >= need then
        return math.ceil(((b + 61) * g - now) * 1000), held
      end
    end
  end
  return math.ceil(60 * g * 1000), held or o
end
"""

ADMIT_LUA = (
    _UNDO
    + _WINDOWS
    + """
sweep(KEYS[2], KEYS[3])
local mkey, kp = KEYS[1], ARGV[5]
if ARGV[6] == '1' then
  if redis.call('HSETNX', mkey, 'init', 1) == 1 then
    redis.call('HSET', mkey, 'req', ARGV[7], 'tok', ARGV[8], 'usd', ARGV[9])
  end
  if kp ~= '' and redis.call('HSETNX', mkey, kp .. 'init', 1) == 1 then
    redis.call('HSET', mkey, kp .. 'usd', ARGV[10])
  end
  redis.call('EXPIRE', mkey, ARGV[4])
end
-- Whether the month is loaded, and every meter's used and reserved, read at once.
local fields = {'init', kp .. 'init'}
for m = 1, tonumber(ARGV[11]) do
  fields[2 * m + 1] = ARGV[9 + 3 * m]
  fields[2 * m + 2] = 'r:' .. ARGV[9 + 3 * m]
end
local vals = redis.call('HMGET', mkey, unpack(fields))
if not vals[1] or (kp ~= '' and not vals[2]) then return {'init'} end
local out, ok, i = {'ok', string.format('%.6f', now)}, true, 12
local meters = {}
for m = 1, tonumber(ARGV[11]) do
  local f, limit, amount = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local cur = tonumber(vals[2 * m + 1] or '0') + tonumber(vals[2 * m + 2] or '0')
  out[#out + 1] = cur
  if limit >= 0 and cur + amount > limit then ok = false end
  meters[m] = {f, ARGV[i + 2]}
  i = i + 3
end
local windows = {}
for w = 6, #KEYS do
  local limit, amount, period = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local g, cur, o, t, c, cs, os, was = slide(KEYS[w], period)
  local wait
  if t + amount > limit then
    ok = false
    wait, o = wait_ms(KEYS[w], g, cur, o, os, t + amount - limit)
  elseif t == 0 then
    wait = math.ceil(((cur + 61) * g - now) * 1000)
  else
    wait, o = wait_ms(KEYS[w], g, cur, o, os, 1)
  end
  out[#out + 1] = t
  out[#out + 1] = wait
  windows[w] = {ARGV[i + 1], period, g, cur, o, t, c, cs, was}
  i = i + 3
end
if not ok then
  -- Buckets the slide dropped are gone from the hash: their count leaves the stored total now,
  -- or it would count them for as long as the window lives.
  for w = 6, #KEYS do
    local _, _, _, _, o, t, _, _, was = unpack(windows[w])
    if was and was ~= o then redis.call('HSET', KEYS[w], 't', t, 'o', o) end
  end
  out[1] = 'no'
  return out
end
local rec = {mkey}
for _, m in ipairs(meters) do
  if m[2] ~= '0' then
    redis.call('HINCRBY', mkey, 'r:' .. m[1], m[2])
    rec[#rec + 1] = 'r:' .. m[1]
    rec[#rec + 1] = m[2]
  end
end
for w = 6, #KEYS do
  local amount, period, g, cur, o, t, c, cs, was = unpack(windows[w])
  -- Added as the strings they came as: no number is turned into a string unless the slide
  -- changed the window's oldest bucket and total.
  redis.call('HINCRBY', KEYS[w], cs, amount)
  if not was then
    redis.call('HSET', KEYS[w], 't', amount, 'o', cs)
  elseif was == o then
    redis.call('HINCRBY', KEYS[w], 't', amount)
  else
    redis.call('HSET', KEYS[w], 't', t + tonumber(amount), 'o', o)
  end
  -- The window lives while its newest bucket counts: set when a bucket begins.
  if c == 0 then redis.call('PEXPIRE', KEYS[w], math.ceil((period + g) * 1000) + 1000) end
end
if #rec > 1 then
  redis.call('HSET', KEYS[2], ARGV[2], table.concat(rec, '\\t'))
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
end
if ARGV[i] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[i])
  redis.call('ZADD', KEYS[5], ARGV[i + 2], ARGV[i + 1])
end
return out
"""
)

SETTLE_LUA = (
    _UNDO
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  undo(v)
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('HDEL', KEYS[4], ARGV[1])
if ARGV[8] ~= '' then redis.call('XADD', KEYS[5], '*', 'p', ARGV[8]) end
local mkey, kp = KEYS[3], ARGV[2]
local init = redis.call('HMGET', mkey, 'init', kp .. 'init')
if init[1] then
  if ARGV[3] ~= '0' then redis.call('HINCRBY', mkey, 'req', ARGV[3]) end
  if ARGV[4] ~= '0' then redis.call('HINCRBY', mkey, 'tok', ARGV[4]) end
  if ARGV[5] ~= '0' then redis.call('HINCRBY', mkey, 'usd', ARGV[5]) end
end
if kp ~= '' and ARGV[5] ~= '0' and init[2] then
  redis.call('HINCRBY', mkey, kp .. 'usd', ARGV[5])
end
local delta, at = tonumber(ARGV[6]), tonumber(ARGV[7])
if delta ~= 0 then
  -- The correction goes to the bucket the estimate was counted in, if it still counts.
  for w = 6, #KEYS do
    local bucket = tostring(math.floor(at / (tonumber(ARGV[3 + w]) / 60)))
    local c = redis.call('HGET', KEYS[w], bucket)
    if c then
      local fix = math.max(delta, -tonumber(c))
      redis.call('HINCRBY', KEYS[w], bucket, fix)
      local t = redis.call('HINCRBY', KEYS[w], 't', fix)
      if t < 0 then redis.call('HSET', KEYS[w], 't', 0) end
    end
  end
end
if v then return 1 end
return 0
"""
)


def ceil_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))
