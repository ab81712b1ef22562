"""The two atomic steps of admission, as Redis Lua scripts and as their in-process twin.

Both sides speak the same protocol (KEYS and ARGV below), so `billing.admission` builds one
request and either runs it in Redis (EVALSHA, one round trip) or in `MemoryStore`.

State per organisation (every key carries the hash tag `{o:<org>}`, so one slot holds it all):
- `rl:<scope>:<window>:<start>`  fixed-window counter, expires at the window's end;
Expiries are relative (EXPIRE/PEXPIRE, never EXPIREAT): the caller's clock names the window, but
Redis never has to agree with it for a key to live as long as its window.
- `m:<YYYYMM>`  hash of the calendar month: `req`, `tok`, `usd` (settled usage, nano-dollars)
  and `k:<key>:usd` per API key, `r:<field>` what live reservations hold, `init` / `k:<key>:init`
  once the month was loaded from the database;
- `res`  hash reservation id -> "<month key>\\t<field>\\t<amount>...", `resx` zset id -> expiry.
Every run first sweeps reservations past their expiry, so a crashed process's holds stop counting.

ADMIT  KEYS: month, res, resx, window...  ARGV: now, res id, res expiry, month TTL (s),
       key field prefix ("k:<id>:" or ""), init flag, init req, tok, usd, key usd,
       meter count, (field, limit or -1, amount) per meter, (limit, amount, TTL in ms) per window.
       Returns {"init"} (load the month first), {"no", current...} or {"ok", current...}: the
       meters' used+reserved and the windows' counts before this request.
SETTLE KEYS: res, resx, month, token window...  ARGV: now, res id, key field prefix,
       requests, tokens, nano-dollars to add as used, delta for the token windows.
"""

from __future__ import annotations

import math
import threading

_COMMON = """
local now = tonumber(ARGV[1])
local function undo(v)
  local parts = {}
  for p in string.gmatch(v, '[^\\t]+') do parts[#parts + 1] = p end
  for i = 2, #parts, 2 do
    local left = redis.call('HINCRBY', parts[1], parts[i], '-' .. parts[i + 1])
    if left < 0 then redis.call('HSET', parts[1], parts[i], 0) end
  end
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
"""

ADMIT_LUA = (
    _COMMON
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
elseif redis.call('HEXISTS', mkey, 'init') == 0
    or (kp ~= '' and redis.call('HEXISTS', mkey, kp .. 'init') == 0) then
  return {'init'}
end
local out, ok, i = {'ok'}, true, 12
local meters = {}
for m = 1, tonumber(ARGV[11]) do
  local f, limit, amount = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local vals = redis.call('HMGET', mkey, f, 'r:' .. f)
  local cur = tonumber(vals[1] or '0') + tonumber(vals[2] or '0')
  out[#out + 1] = string.format('%.0f', cur)
  if limit >= 0 and cur + amount > limit then ok = false end
  meters[m] = {f, ARGV[i + 2]}
  i = i + 3
end
local windows = {}
for w = 4, #KEYS do
  local limit, amount = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local cur = tonumber(redis.call('GET', KEYS[w]) or '0')
  out[#out + 1] = string.format('%.0f', cur)
  if cur + amount > limit then ok = false end
  windows[w] = {ARGV[i + 1], ARGV[i + 2]}
  i = i + 3
end
if not ok then
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
for w = 4, #KEYS do
  redis.call('INCRBY', KEYS[w], windows[w][1])
  redis.call('PEXPIRE', KEYS[w], windows[w][2])
end
if #rec > 1 then
  redis.call('HSET', KEYS[2], ARGV[2], table.concat(rec, '\\t'))
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
end
return out
"""
)

SETTLE_LUA = (
    _COMMON
    + """
sweep(KEYS[1], KEYS[2])
local v = redis.call('HGET', KEYS[1], ARGV[2])
if v then
  undo(v)
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
end
local mkey, kp = KEYS[3], ARGV[3]
if redis.call('HEXISTS', mkey, 'init') == 1 then
  if ARGV[4] ~= '0' then redis.call('HINCRBY', mkey, 'req', ARGV[4]) end
  if ARGV[5] ~= '0' then redis.call('HINCRBY', mkey, 'tok', ARGV[5]) end
  if ARGV[6] ~= '0' then redis.call('HINCRBY', mkey, 'usd', ARGV[6]) end
end
if kp ~= '' and ARGV[6] ~= '0' and redis.call('HEXISTS', mkey, kp .. 'init') == 1 then
  redis.call('HINCRBY', mkey, kp .. 'usd', ARGV[6])
end
if ARGV[7] ~= '0' then
  for w = 4, #KEYS do
    if redis.call('EXISTS', KEYS[w]) == 1 then
      if redis.call('INCRBY', KEYS[w], ARGV[7]) < 0 then
        redis.call('SET', KEYS[w], 0, 'KEEPTTL')
      end
    end
  end
end
if v then return 1 end
return 0
"""
)


class MemoryStore:
    """The scripts above in Python, for one process without Redis.

    The lock is a threading lock held only around code that never awaits: it makes each run
    atomic for every task on every event loop and thread of the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._hashes: dict[str, dict[str, int]] = {}
        self._res: dict[str, dict[str, tuple[str, list[tuple[str, int]]]]] = {}
        self._resx: dict[str, dict[str, float]] = {}
        self._runs = 0

    def clear(self) -> None:
        with self._lock:
            self._counters.clear()
            self._hashes.clear()
            self._res.clear()
            self._resx.clear()

    def _get(self, key: str, now: float) -> int:
        entry = self._counters.get(key)
        if entry is None or entry[1] <= now:
            self._counters.pop(key, None)
            return 0
        return entry[0]

    def _undo(self, month_key: str, holds: list[tuple[str, int]]) -> None:
        fields = self._hashes.setdefault(month_key, {})
        for field, amount in holds:
            fields[field] = max(0, fields.get(field, 0) - amount)

    def _sweep(self, res: str, resx: str, now: float) -> None:
        expiries = self._resx.get(resx, {})
        for rid in [rid for rid, at in expiries.items() if at <= now]:
            hold = self._res.get(res, {}).pop(rid, None)
            if hold is not None:
                self._undo(*hold)
            expiries.pop(rid, None)

    def _purge(self, now: float) -> None:
        # Windows are keyed by their start and never read again once over: drop them now and then.
        self._runs += 1
        if self._runs % 1000 == 0:
            for key in [k for k, (_, at) in self._counters.items() if at <= now]:
                del self._counters[key]

    def admit(self, keys: list[str], args: list[str]) -> list[str]:
        now = float(args[0])
        with self._lock:
            self._purge(now)
            self._sweep(keys[1], keys[2], now)
            fields = self._hashes.setdefault(keys[0], {})
            kp = args[4]
            if args[5] == "1":
                if "init" not in fields:
                    fields.update(init=1, req=int(args[6]), tok=int(args[7]), usd=int(args[8]))
                if kp and kp + "init" not in fields:
                    fields[kp + "init"] = 1
                    fields[kp + "usd"] = int(args[9])
            elif "init" not in fields or (kp and kp + "init" not in fields):
                return ["init"]
            out, ok, i = ["ok"], True, 11
            meters = []
            for _ in range(int(args[10])):
                field, limit, amount = args[i], int(args[i + 1]), int(args[i + 2])
                current = fields.get(field, 0) + fields.get("r:" + field, 0)
                out.append(str(current))
                ok = ok and not (limit >= 0 and current + amount > limit)
                meters.append((field, amount))
                i += 3
            windows = []
            for key in keys[3:]:
                limit, amount = int(args[i]), int(args[i + 1])
                expire_at = now + int(args[i + 2]) / 1000
                current = self._get(key, now)
                out.append(str(current))
                ok = ok and current + amount <= limit
                windows.append((key, current + amount, expire_at))
                i += 3
            if not ok:
                out[0] = "no"
                return out
            holds = [("r:" + field, amount) for field, amount in meters if amount]
            for field, amount in holds:
                fields[field] = fields.get(field, 0) + amount
            for key, count, expire_at in windows:
                self._counters[key] = (count, expire_at)
            if holds:
                self._res.setdefault(keys[1], {})[args[1]] = (keys[0], holds)
                self._resx.setdefault(keys[2], {})[args[1]] = float(args[2])
            return out

    def settle(self, keys: list[str], args: list[str]) -> int:
        now = float(args[0])
        with self._lock:
            self._sweep(keys[0], keys[1], now)
            hold = self._res.get(keys[0], {}).pop(args[1], None)
            self._resx.get(keys[1], {}).pop(args[1], None)
            if hold is not None:
                self._undo(*hold)
            fields = self._hashes.setdefault(keys[2], {})
            kp = args[2]
            if "init" in fields:
                for field, value in (("req", args[3]), ("tok", args[4]), ("usd", args[5])):
                    fields[field] = fields.get(field, 0) + int(value)
            if kp and kp + "init" in fields:
                fields[kp + "usd"] = fields.get(kp + "usd", 0) + int(args[5])
            delta = int(args[6])
            for key in keys[3:]:
                entry = self._counters.get(key)
                if entry is not None and entry[1] > now:
                    self._counters[key] = (max(0, entry[0] + delta), entry[1])
            return 1 if hold is not None else 0


def ceil_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))
