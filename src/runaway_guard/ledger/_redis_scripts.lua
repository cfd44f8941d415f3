-- The Redis ledger's operations: one atomic script each, one round trip each.
--
-- The file is split at "--@@ name" lines; the preamble before the first one is put in
-- front of every script. KEYS[1] is always "{prefix}:meta": it routes the call to the
-- node that owns the prefix's hash slot, and every key a script touches starts with
-- the same "{prefix}:" hash tag, so it lives in that slot too.
--
-- Amounts are signed 64-bit integers carried as decimal strings. Redis stores them
-- exactly (HINCRBY works on 64-bit integers and refuses to overflow), but a Lua number
-- is a double, exact only below 2^53. So no amount is ever turned into a Lua number:
-- comparisons split each one into two exact limbs of base 10^9 (below).
--
-- Times are epoch seconds as the caller's clock gives them; every decision compares
-- them with the caller's `now`. Redis TTLs only collect garbage, and are set relative
-- to `now` so a test clock and the server's clock never need to agree.

local P = string.sub(KEYS[1], 1, -5) -- "{prefix}:"
local B = 1000000000

-- value = hi * B + lo with 0 <= lo < B; both parts exact as doubles for any int64.
local function limbs(s)
  if not s or s == '' then return 0, 0 end
  local negative = string.sub(s, 1, 1) == '-'
  if negative then s = string.sub(s, 2) end
  local n = #s
  local hi, lo = 0, tonumber(s)
  if n > 9 then
    hi = tonumber(string.sub(s, 1, n - 9))
    lo = tonumber(string.sub(s, n - 8))
  end
  if negative then
    if lo > 0 then return -hi - 1, B - lo end
    return -hi, 0
  end
  return hi, lo
end

local function add(ah, al, bh, bl)
  local h, l = ah + bh, al + bl
  if l >= B then return h + 1, l - B end
  return h, l
end

local function negated(s)
  if s == '0' then return '0' end
  if string.sub(s, 1, 1) == '-' then return string.sub(s, 2) end
  return '-' .. s
end

local function decimal(h, l)
  if h < 0 then
    if l > 0 then h, l = -h - 1, B - l else h = -h end
    return '-' .. decimal(h, l)
  end
  if h == 0 then return string.format('%d', l) end
  return string.format('%d%09d', h, l)
end

-- a - b, exactly, for decimal strings
local function minus(a, b)
  local ah, al = limbs(a)
  local bh, bl = limbs(negated(b))
  return decimal(add(ah, al, bh, bl))
end

-- settled + held + asked <= limit, exactly
local function fits(settled, held, asked, limit)
  local h, l = limbs(settled)
  h, l = add(h, l, limbs(held))
  h, l = add(h, l, limbs(asked))
  local mh, ml = limbs(limit)
  return h < mh or (h == mh and l <= ml)
end

-- Redis scripts do not roll back: a HINCRBY that overflowed half-way through would
-- leave the lines before it written. So every sum is checked before the first write.
local INT64_MAX = '9223372036854775807'

local function overflows(a, b)
  return not fits(a, b, '0', INT64_MAX)
end

local function ttl_ms(until_s, now, grace)
  local ms = math.floor((until_s - now + grace) * 1000)
  if ms < 1000 then ms = 1000 end
  return string.format('%d', ms)
end

-- An op id arrives as "0<id>" on the first try and "1<id>" on a retry: only a retry
-- can find a kept reply, so only a retry looks for one.
local function memo_get(op)
  if string.sub(op, 1, 1) ~= '1' then return nil end
  local kept = redis.call('GET', P .. 'op:' .. string.sub(op, 2))
  if kept then return cjson.decode(kept) end
  return nil
end

local function memo_put(op, ttl, reply)
  redis.call('SET', P .. 'op:' .. string.sub(op, 2), cjson.encode(reply), 'PX', ttl)
  return reply
end

local function first_amount(lines, unit)
  for _, ln in ipairs(lines) do
    if ln[4] == unit then return ln[2] end
  end
  return nil
end

local HOLD_FIELDS = {'st', 'cr', 'lu', 'co', 'ru', 'ci', 'at', 'es', 'ln'}

local function spend(now, id, h, money, tokens, outcome, err, maxlen)
  redis.call('XADD', P .. 'spend', 'MAXLEN', '~', maxlen, '*',
    't', now, 'h', id, 'c', h[6], 'co', h[4], 'ru', h[5], 'a', h[7], 'e', h[8],
    'm', money, 'k', tokens, 'o', outcome, 'r', err)
end

--@@ init
-- ARGV: schema version. Returns the stored version (set if the prefix is new).
redis.call('HSETNX', KEYS[1], 'schema', ARGV[1])
return redis.call('HGET', KEYS[1], 'schema')

--@@ reserve
-- ARGV: hold id, now, lease until, contract, run, call id, attempt, estimate,
--       lines json, counter grace, blockers...
local now = tonumber(ARGV[2])
if #ARGV >= 11 then
  local names = {}
  for i = 11, #ARGV do names[#names + 1] = P .. 's:' .. ARGV[i] end
  -- One call in the usual case (no kill switch at all); look closer only if one exists.
  if redis.call('EXISTS', unpack(names)) > 0 then
    for i = 11, #ARGV do
      local st = redis.call('HMGET', names[i - 10], 'v', 'x')
      if st[1] and (not st[2] or tonumber(st[2]) > now) then
        return {'blocked', ARGV[i], st[1]}
      end
    end
  end
end
local hk = P .. 'h:' .. ARGV[1]
if redis.call('EXISTS', hk) == 1 then return {'placed'} end
local lines = cjson.decode(ARGV[9])
local found = {}
for i, ln in ipairs(lines) do
  local c = redis.call('HMGET', P .. 'c:' .. ln[1], 's', 'h', 'l')
  found[i] = c
  if ln[3] ~= '' and not fits(c[1], c[2], ln[2], ln[3]) then
    return {'refused', string.format('%d', i), c[1] or '0', c[2] or '0'}
  end
  if overflows(c[2], ln[2]) then return {'overflow', ln[1]} end
end
local grace = tonumber(ARGV[10])
for i, ln in ipairs(lines) do
  local ck = P .. 'c:' .. ln[1]
  local c = found[i]
  if not c[1] then
    if ln[3] == '' then
      redis.call('HSET', ck, 's', '0', 'h', ln[2])
    else
      redis.call('HSET', ck, 's', '0', 'h', ln[2], 'l', ln[3])
    end
    redis.call('ZADD', P .. 'cidx', 0, ln[1])
    if ln[5] ~= '' then
      redis.call('HSET', ck, 'x', ln[5])
      redis.call('PEXPIRE', ck, ttl_ms(tonumber(ln[5]), now, grace))
    end
  else
    redis.call('HINCRBY', ck, 'h', ln[2])
    if ln[3] ~= (c[3] or '') then
      if ln[3] == '' then redis.call('HDEL', ck, 'l') else redis.call('HSET', ck, 'l', ln[3]) end
    end
  end
end
redis.call('HSET', hk, 'st', 'held', 'cr', ARGV[2], 'lu', ARGV[3], 'co', ARGV[4],
  'ru', ARGV[5], 'ci', ARGV[6], 'at', ARGV[7], 'es', ARGV[8], 'ln', ARGV[9])
redis.call('ZADD', P .. 'live', ARGV[3], ARGV[1])
return {'placed'}

--@@ settle
-- ARGV: op id, hold id, now, outcome, error, report (1/0), memo ttl ms, stream maxlen,
--       number of actuals, (unit, amount) pairs..., state keys to clear...
local kept = memo_get(ARGV[1])
if kept then return kept end
local actual = {}
local pairs_n = tonumber(ARGV[9])
for i = 0, pairs_n - 1 do actual[ARGV[10 + 2 * i]] = ARGV[11 + 2 * i] end
local hk = P .. 'h:' .. ARGV[2]
local h = redis.call('HMGET', hk, unpack(HOLD_FIELDS))
local reply = {'unknown', {}, {}, ''}
if h[1] then
  local reaped = h[1] == 'reaped'
  local lines = cjson.decode(h[9])
  local live = {}
  for i, ln in ipairs(lines) do
    local real = actual[ln[4]] or '0'
    -- Read the counter only where it matters: a window counter may have expired, and
    -- only a sum of 19 digits or more can pass the int64 range.
    if ln[5] ~= '' or #real >= 19 then
      local settled = redis.call('HGET', P .. 'c:' .. ln[1], 's')
      live[i] = settled ~= false
      if #real >= 19 or (settled and #settled >= 19) then
        if overflows(settled, real) then return {'overflow', ln[1]} end
      end
    else
      live[i] = true
    end
  end
  local counters = {}
  for i, ln in ipairs(lines) do
    local ck = P .. 'c:' .. ln[1]
    -- A window counter that already expired is not brought back by a late settle.
    if live[i] then
      local real = actual[ln[4]] or '0'
      if real ~= '0' then redis.call('HINCRBY', ck, 's', real) end
      redis.call('HINCRBY', ck, reaped and 's' or 'h', negated(ln[2]))
    end
    if ARGV[6] == '1' then
      local c = redis.call('HMGET', ck, 's', 'h', 'l')
      counters[i] = {c[1] or '0', c[2] or '0', c[3] or ''}
    end
  end
  redis.call('DEL', hk)
  redis.call('ZREM', P .. (reaped and 'reaped' or 'live'), ARGV[2])
  local money, tokens, outcome = actual['money'] or '0', actual['tokens'] or '0', ARGV[4]
  if reaped then
    money = minus(money, h[8])
    tokens = minus(tokens, first_amount(lines, 'tokens') or '0')
    outcome = 'corrected'
  end
  spend(ARGV[3], ARGV[2], h, money, tokens, outcome, ARGV[5], ARGV[8])
  reply = {reaped and 'corrected' or 'settled', counters, {}, h[9]}
end
local cleared = {}
for i = 10 + 2 * pairs_n, #ARGV do
  if redis.call('DEL', P .. 's:' .. ARGV[i]) == 1 then
    redis.call('ZREM', P .. 'sidx', ARGV[i])
    cleared[#cleared + 1] = ARGV[i]
  end
end
reply[3] = cleared
return memo_put(ARGV[1], ARGV[7], reply)

--@@ reap
-- ARGV: op id, now, limit, reaped retention s, memo ttl ms, stream maxlen,
--       spend retention ms (0: none)
local kept = memo_get(ARGV[1])
if kept then return kept end
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[4])
local forgotten = redis.call('ZRANGEBYSCORE', P .. 'reaped', '-inf',
  '(' .. string.format('%.17g', now - retention), 'LIMIT', 0, 1000)
for _, id in ipairs(forgotten) do
  redis.call('DEL', P .. 'h:' .. id)
  redis.call('ZREM', P .. 'reaped', id)
end
local due = redis.call('ZRANGEBYSCORE', P .. 'live', '-inf', '(' .. ARGV[2],
  'LIMIT', 0, tonumber(ARGV[3]))
local reaped = {}
for _, id in ipairs(due) do
  local hk = P .. 'h:' .. id
  local h = redis.call('HMGET', hk, unpack(HOLD_FIELDS))
  redis.call('ZREM', P .. 'live', id)
  if h[1] == 'held' then
    local lines = cjson.decode(h[9])
    -- Charged its full estimate: the call may have been billed before the holder died.
    local charge = {money = h[8], calls = first_amount(lines, 'calls'),
      tokens = first_amount(lines, 'tokens')}
    for _, ln in ipairs(lines) do
      local ck = P .. 'c:' .. ln[1]
      if ln[5] == '' or redis.call('EXISTS', ck) == 1 then
        local real = charge[ln[4]] or '0'
        if real ~= '0' then redis.call('HINCRBY', ck, 's', real) end
        redis.call('HINCRBY', ck, 'h', negated(ln[2]))
      end
    end
    redis.call('HSET', hk, 'st', 'reaped')
    redis.call('ZADD', P .. 'reaped', h[3], id)
    redis.call('PEXPIRE', hk, ttl_ms(tonumber(h[3]) + retention, now, 86400))
    spend(ARGV[2], id, h, h[8], charge.tokens or '0', 'reaped', '', ARGV[6])
    reaped[#reaped + 1] = {id, h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]}
  end
end
if ARGV[7] ~= '0' then
  local t = redis.call('TIME')
  local oldest = tonumber(t[1]) * 1000 - tonumber(ARGV[7])
  redis.call('XTRIM', P .. 'spend', 'MINID', '~', string.format('%d', oldest))
end
return memo_put(ARGV[1], ARGV[5], reaped)

--@@ renew
-- ARGV: hold id, lease until
local hk = P .. 'h:' .. ARGV[1]
if redis.call('HGET', hk, 'st') ~= 'held' then return 0 end
redis.call('HSET', hk, 'lu', ARGV[2])
redis.call('ZADD', P .. 'live', 'XX', ARGV[2], ARGV[1])
return 1

--@@ counters
-- ARGV: counter keys. Returns {key, settled, held, limit} for those that exist.
local found = {}
for _, key in ipairs(ARGV) do
  local c = redis.call('HMGET', P .. 'c:' .. key, 's', 'h', 'l')
  if c[1] then found[#found + 1] = {key, c[1], c[2] or '0', c[3] or ''} end
end
return found

--@@ list_counters
-- ARGV: key prefix, now ('' for every window)
local names
if ARGV[1] == '' then
  names = redis.call('ZRANGEBYLEX', P .. 'cidx', '-', '+')
else
  names = redis.call('ZRANGEBYLEX', P .. 'cidx', '[' .. ARGV[1], '[' .. ARGV[1] .. '\255')
end
local now = tonumber(ARGV[2])
local found = {}
for _, key in ipairs(names) do
  local c = redis.call('HMGET', P .. 'c:' .. key, 's', 'h', 'l', 'x')
  if not c[1] then
    redis.call('ZREM', P .. 'cidx', key) -- its window expired and Redis dropped it
  elseif not now or not c[4] or tonumber(c[4]) > now then
    found[#found + 1] = {key, c[1], c[2] or '0', c[3] or ''}
  end
end
return found

--@@ holds
local found = {}
for _, zset in ipairs({'live', 'reaped'}) do
  for _, id in ipairs(redis.call('ZRANGE', P .. zset, 0, -1)) do
    local h = redis.call('HMGET', P .. 'h:' .. id, unpack(HOLD_FIELDS))
    if h[1] then
      found[#found + 1] = {id, h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[1]}
    end
  end
end
return found

--@@ get_state
-- ARGV: key, now
local st = redis.call('HMGET', P .. 's:' .. ARGV[1], 'n', 'v', 'x')
if st[2] and (not st[3] or tonumber(st[3]) > tonumber(ARGV[2])) then
  return {st[1], st[2], st[3] or ''}
end
return nil

--@@ cas_state
-- ARGV: op id, key, expected version, write (1) or delete (0), value, now,
--       expires ('' for never), grace s, memo ttl ms
local kept = memo_get(ARGV[1])
if kept then return kept end
local sk = P .. 's:' .. ARGV[2]
local now = tonumber(ARGV[6])
local st = redis.call('HMGET', sk, 'n', 'v', 'x')
local version = 0
if st[2] and (not st[3] or tonumber(st[3]) > now) then version = tonumber(st[1]) end
if version ~= tonumber(ARGV[3]) then return memo_put(ARGV[1], ARGV[9], {0}) end
if ARGV[4] == '0' then
  redis.call('DEL', sk)
  redis.call('ZREM', P .. 'sidx', ARGV[2])
else
  redis.call('DEL', sk)
  redis.call('HSET', sk, 'n', string.format('%d', version + 1), 'v', ARGV[5])
  redis.call('ZADD', P .. 'sidx', 0, ARGV[2])
  if ARGV[7] ~= '' then
    redis.call('HSET', sk, 'x', ARGV[7])
    redis.call('PEXPIRE', sk, ttl_ms(tonumber(ARGV[7]), now, tonumber(ARGV[8])))
  end
end
return memo_put(ARGV[1], ARGV[9], {1})

--@@ list_states
-- ARGV: key prefix, now
local names = redis.call('ZRANGEBYLEX', P .. 'sidx', '[' .. ARGV[1], '[' .. ARGV[1] .. '\255')
local now = tonumber(ARGV[2])
local found = {}
for _, key in ipairs(names) do
  local st = redis.call('HMGET', P .. 's:' .. key, 'n', 'v', 'x')
  if not st[2] then
    redis.call('ZREM', P .. 'sidx', key)
  elseif not st[3] or tonumber(st[3]) > now then
    found[#found + 1] = {key, st[1], st[2], st[3] or ''}
  end
end
return found

--@@ mark_once
-- ARGV: op id, key, now, expires ('' for never), grace s, memo ttl ms
local kept = memo_get(ARGV[1])
if kept then return kept end
local mk = P .. 'm:' .. ARGV[2]
local now = tonumber(ARGV[3])
local until_s = redis.call('GET', mk)
if until_s and (until_s == '' or tonumber(until_s) > now) then
  return memo_put(ARGV[1], ARGV[6], {0})
end
if ARGV[4] == '' then
  redis.call('SET', mk, '')
else
  redis.call('SET', mk, ARGV[4], 'PX', ttl_ms(tonumber(ARGV[4]), now, tonumber(ARGV[5])))
end
return memo_put(ARGV[1], ARGV[6], {1})

--@@ acquire_slot
-- ARGV: name, limit, holder, now, lease until, grace s
local zk = P .. 'slot:' .. ARGV[1]
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', zk, '-inf', ARGV[4])
if not redis.call('ZSCORE', zk, ARGV[3]) and redis.call('ZCARD', zk) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', zk, ARGV[5], ARGV[3])
local last = redis.call('ZRANGE', zk, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', zk, ttl_ms(tonumber(last[2]), now, tonumber(ARGV[6])))
return 1

--@@ release_slot
-- ARGV: name, holder
redis.call('ZREM', P .. 'slot:' .. ARGV[1], ARGV[2])
return 1

--@@ slots_in_use
-- ARGV: name, now
return redis.call('ZCOUNT', P .. 'slot:' .. ARGV[1], '(' .. ARGV[2], '+inf')

--@@ claim
-- ARGV: key, owner, now, lease until, grace s
local ck = P .. 'k:' .. ARGV[1]
local now = tonumber(ARGV[3])
local c = redis.call('HMGET', ck, 'o', 'st', 'r', 'u')
if c[1] and tonumber(c[4]) > now then
  if c[2] == 'done' then return {'done', c[3] or '', c[1]} end
  if c[1] ~= ARGV[2] then return {'in_flight', '', c[1]} end
end
redis.call('DEL', ck)
redis.call('HSET', ck, 'o', ARGV[2], 'st', 'pending', 'u', ARGV[4])
redis.call('PEXPIRE', ck, ttl_ms(tonumber(ARGV[4]), now, tonumber(ARGV[5])))
return {'claimed', '', ARGV[2]}

--@@ complete
-- ARGV: op id, key, owner, result, now, expires, grace s, memo ttl ms
local kept = memo_get(ARGV[1])
if kept then return kept end
local ck = P .. 'k:' .. ARGV[2]
local c = redis.call('HMGET', ck, 'o', 'st')
if c[1] ~= ARGV[3] or c[2] ~= 'pending' then return memo_put(ARGV[1], ARGV[8], {0}) end
redis.call('HSET', ck, 'st', 'done', 'r', ARGV[4], 'u', ARGV[6])
redis.call('PEXPIRE', ck, ttl_ms(tonumber(ARGV[6]), tonumber(ARGV[5]), tonumber(ARGV[7])))
return memo_put(ARGV[1], ARGV[8], {1})

--@@ abandon
-- ARGV: key, owner
local ck = P .. 'k:' .. ARGV[1]
local c = redis.call('HMGET', ck, 'o', 'st')
if c[1] == ARGV[2] and c[2] == 'pending' then redis.call('DEL', ck) end
return 1

--@@ currency
-- ARGV: default currency
redis.call('HSETNX', KEYS[1], 'currency', ARGV[1])
return redis.call('HGET', KEYS[1], 'currency')
