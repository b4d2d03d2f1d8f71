package redispresence

import "github.com/redis/go-redis/v9"

// roomScript changes one room, atomically. Every key is in the room's
// slot:
//
//	KEYS[1] sockets  hash  sid -> node "\n" user
//	KEYS[2] members  hash  user -> sockets
//	KEYS[3] info     hash  user -> public info (JSON)
//	KEYS[4] gens     hash  user -> generation of the user's membership
//	KEYS[5] seq      string, the room's generation counter (microseconds
//	                 at creation, then +1 per generation; kept an hour
//	                 after the room is vacated so generations only grow)
//	KEYS[6] occ      string, the generation of the room's occupancy
//	KEYS[7] nodes    hash  node -> sockets of that node in the room
//	KEYS[8] outbox   list  events decided and not yet in the stream
//
// ARGV[1] is the operation:
//
//	join  sid node user info   put sid in the room (a sid already there is
//	                           taken over by node, without an event)
//	leave sid node             take sid out if node owns it
//	sweep node                 take out every socket node owns
//	ack   entry...             drop entries of the outbox (they are in the stream)
//
// join, leave and sweep answer {sockets of ARGV node left in the room,
// outbox entries...}: join and leave the entries they pushed, sweep every
// entry of the swept node in the outbox (those it pushed, and those a
// crash left there). An entry is JSON {t type, u user, s sid, g generation, m members,
// n node, ms time, i info}.
var roomScript = redis.NewScript(`
local op = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end
local function gen()
  if redis.call('EXISTS', KEYS[5]) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', KEYS[5], t[1] .. string.format('%06d', t[2]))
  end
  redis.call('PERSIST', KEYS[5])
  redis.call('INCR', KEYS[5])
  return redis.call('GET', KEYS[5])
end
local pushed = {}
local function push(t, user, sid, g, node, info)
  local e = {t = t, u = user, s = sid, g = g, m = redis.call('HLEN', KEYS[2]), n = node, ms = now()}
  if info and info ~= '' then e.i = info end
  local enc = cjson.encode(e)
  redis.call('RPUSH', KEYS[8], enc)
  pushed[#pushed + 1] = enc
end
local function nodeDelta(node, d)
  local n = redis.call('HINCRBY', KEYS[7], node, d)
  if n <= 0 then redis.call('HDEL', KEYS[7], node) end
end
local function remove(sid, owner, user)
  redis.call('HDEL', KEYS[1], sid)
  nodeDelta(owner, -1)
  local n = redis.call('HINCRBY', KEYS[2], user, -1)
  if n <= 0 then
    redis.call('HDEL', KEYS[2], user)
    local g = redis.call('HGET', KEYS[4], user) or ''
    local info = redis.call('HGET', KEYS[3], user) or ''
    redis.call('HDEL', KEYS[4], user)
    redis.call('HDEL', KEYS[3], user)
    push('leave', user, sid, g, owner, info)
    if redis.call('HLEN', KEYS[2]) == 0 then
      local occ = redis.call('GET', KEYS[6]) or ''
      redis.call('DEL', KEYS[6], KEYS[1], KEYS[7])
      redis.call('PEXPIRE', KEYS[5], 3600000)
      push('vacated', '', sid, occ, owner)
    end
  end
end
local function answer(node, swept)
  local out = {tonumber(redis.call('HGET', KEYS[7], node) or '0')}
  if swept then
    -- every pending entry of the swept node, those a crash left behind too
    for _, e in ipairs(redis.call('LRANGE', KEYS[8], 0, -1)) do
      if cjson.decode(e).n == node then out[#out + 1] = e end
    end
  else
    for _, e in ipairs(pushed) do out[#out + 1] = e end
  end
  return out
end

if op == 'ack' then
  for i = 2, #ARGV do redis.call('LREM', KEYS[8], 1, ARGV[i]) end
  return 0
end
if op == 'join' then
  local sid, node, user, info = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
  local cur = redis.call('HGET', KEYS[1], sid)
  if cur then
    local owner, was = string.match(cur, '^([^\n]*)\n(.*)$')
    if owner ~= node then
      redis.call('HSET', KEYS[1], sid, node .. '\n' .. was)
      nodeDelta(owner, -1)
      nodeDelta(node, 1)
    end
    return answer(node)
  end
  redis.call('HSET', KEYS[1], sid, node .. '\n' .. user)
  nodeDelta(node, 1)
  if redis.call('HLEN', KEYS[2]) == 0 then
    local g = gen()
    redis.call('SET', KEYS[6], g)
    redis.call('HSET', KEYS[2], user, 0)
    push('occupied', '', sid, g, node)
  end
  if redis.call('HINCRBY', KEYS[2], user, 1) == 1 then
    local g = gen()
    redis.call('HSET', KEYS[4], user, g)
    if info ~= '' then redis.call('HSET', KEYS[3], user, info) end
    push('join', user, sid, g, node, info)
  end
  return answer(node)
end
if op == 'leave' then
  local sid, node = ARGV[2], ARGV[3]
  local cur = redis.call('HGET', KEYS[1], sid)
  if cur then
    local owner, user = string.match(cur, '^([^\n]*)\n(.*)$')
    if owner == node then remove(sid, owner, user) end
  end
  return answer(node)
end
if op == 'sweep' then
  local node = ARGV[2]
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local owner, user = string.match(all[i + 1], '^([^\n]*)\n(.*)$')
    if owner == node then remove(all[i], owner, user) end
  end
  return answer(node, true)
end
return redis.error_reply('unknown op ' .. tostring(op))
`)

// socketScript records which node owns a socket, atomically:
//
//	KEYS[1] socket  hash {node, user}
//	KEYS[2] outbox  list, as roomScript's
//
//	connect    node user   own the socket; a new one gets a connect event
//	disconnect node reason [sweep]
//	                       end it if node owns it (a disconnect event)
//	ack        entry...    drop outbox entries
//
// It answers the entries it pushed; a disconnect marked sweep, every
// entry of node in the outbox.
var socketScript = redis.NewScript(`
local op = ARGV[1]
local pushed = {}
local function push(t, user, node, reason)
  local tm = redis.call('TIME')
  local e = {t = t, u = user, n = node, ms = tm[1] * 1000 + math.floor(tm[2] / 1000)}
  if reason then e.r = reason end
  local enc = cjson.encode(e)
  redis.call('RPUSH', KEYS[2], enc)
  pushed[#pushed + 1] = enc
end
if op == 'ack' then
  for i = 2, #ARGV do redis.call('LREM', KEYS[2], 1, ARGV[i]) end
  return {}
end
if op == 'connect' then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('HSET', KEYS[1], 'node', ARGV[2])
  else
    redis.call('HSET', KEYS[1], 'node', ARGV[2], 'user', ARGV[3])
    push('connect', ARGV[3], ARGV[2])
  end
elseif op == 'disconnect' then
  if redis.call('HGET', KEYS[1], 'node') == ARGV[2] then
    local user = redis.call('HGET', KEYS[1], 'user') or ''
    redis.call('DEL', KEYS[1])
    push('disconnect', user, ARGV[2], ARGV[3])
  end
  if ARGV[4] == 'sweep' then
    local out = {}
    for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
      if cjson.decode(e).n == ARGV[2] then out[#out + 1] = e end
    end
    return out
  end
else
  return redis.error_reply('unknown op ' .. tostring(op))
end
return pushed
`)

// appendScript appends events to the event stream once each:
//
//	KEYS[1] the stream, KEYS[2] a sorted set of the ids appended lately
//	(scored by time, in the stream's slot)
//	ARGV[1] the stream's approximate MAXLEN, ARGV[2] how long ids are
//	remembered (ms), then id, type, event JSON for each event
//
// It answers how many were appended (the others were already there).
var appendScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
local n = 0
for i = 3, #ARGV, 3 do
  if redis.call('ZADD', KEYS[2], 'NX', now, ARGV[i]) == 1 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[i], 'type', ARGV[i + 1], 'event', ARGV[i + 2])
    n = n + 1
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return n
`)

// indexScript keeps a namespace's index of occupied rooms, a sorted set
// room -> occupancy generation, negative once vacated (a tombstone, so a
// late occupied never re-adds a room vacated after it):
//
// Tombstones older than an hour are dropped.
//
//	KEYS[1] the index; ARGV[1] room, ARGV[2] generation, ARGV[3] "1" occupied / "0" vacated
var indexScript = redis.NewScript(`
local t = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', -((t[1] - 3600) * 1000000)), '(0')
local g = tonumber(ARGV[2])
local cur = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if math.abs(cur) < g then
  if ARGV[3] == '1' then
    redis.call('ZADD', KEYS[1], g, ARGV[1])
  else
    redis.call('ZADD', KEYS[1], -g, ARGV[1])
  end
end
return 0
`)
