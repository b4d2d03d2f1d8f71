package redisqueue

import (
	"strings"

	"github.com/redis/go-redis/v9"
)

// The scripts run atomically on the node that owns the user's hash slot:
// KEYS[1] is the stream <prefix>:stream:{<user>} and KEYS[2], when present,
// the live channel <prefix>:live:{<user>}, which share the {user} hash tag.
// They need Redis 7 (SPUBLISH, XINFO STREAM's max-deleted-entry-id).

// luaCmp compares two canonical stream IDs ("<ms>-<seq>", ms < 2^53).
const luaCmp = `
local function cmp(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  local x, y = tonumber(am), tonumber(bm)
  if x ~= y then
    if x < y then return -1 end
    return 1
  end
  if as == bs then return 0 end
  if #as ~= #bs then
    if #as < #bs then return -1 end
    return 1
  end
  if as < bs then return -1 end
  return 1
end
`

// appendScript appends one entry unless the user's stream is full, renews
// the stream's TTL and publishes the entry with its ID, all in one step, so
// every live delivery carries the ID Read returns. KEYS[3] is the user's
// byte counter <prefix>:bytes:{<user>}, the sum of the "s" (size) fields of
// the stream's entries, in the stream's hash slot.
//
// Entries leave by age only: every 32 appends, and whenever the stream
// looks full, the entries whose time part is retention older than now go,
// their sizes subtracted from the counter. The cut is exact and recorded as
// the stream's max-deleted-entry-id (XSETID): XTRIM does not maintain it,
// and Read relies on it to refuse partial histories. (Checking the head on
// every append would cost about a third of the script's time.) Then a
// stream holding maxlen entries, or whose bytes plus this entry's size
// would pass maxbytes, refuses the entry: nothing else is trimmed to make
// room.
//
// ARGV: maxlen, retention ms, namespace, event, data, attachments (frames,
// "" for none), maxbytes, size (queue.Message.Size). Returns the entry ID,
// or false (a nil reply) when the stream is full.
const appendLua = `
local maxlen, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
local maxbytes, size = tonumber(ARGV[7]), tonumber(ARGV[8])
local len = redis.call('XLEN', KEYS[1])
local bytes = 0
if len > 0 then bytes = tonumber(redis.call('GET', KEYS[3]) or '0') end
local cut
if len > 0 and (len % 32 == 0 or len >= maxlen or bytes + size > maxbytes) then
  local t = redis.call('TIME')
  local floor = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - retention + 1
  -- From the head, up to the first younger entry: cheap when none is old.
  local old = redis.call('XRANGE', KEYS[1], '-', '(' .. string.format('%.0f', floor) .. '-0', 'COUNT', len)
  if #old > 0 then
    cut = old[#old][1]
    for _, e in ipairs(old) do
      local f = e[2]
      for i = 1, #f, 2 do
        if f[i] == 's' then bytes = bytes - tonumber(f[i + 1]) end
      end
    end
    len = len - #old
    if len == 0 or bytes < 0 then bytes = 0 end
  end
end
local id = false
if len < maxlen and bytes + size <= maxbytes then
  if ARGV[6] == '' then
    id = redis.call('XADD', KEYS[1], '*', 'n', ARGV[3], 'e', ARGV[4], 'd', ARGV[5], 's', ARGV[8])
  else
    id = redis.call('XADD', KEYS[1], '*', 'n', ARGV[3], 'e', ARGV[4], 'd', ARGV[5], 'a', ARGV[6], 's', ARGV[8])
  end
  bytes = bytes + size
end
if cut then
  local top = id
  if not top then top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][1] end
  local cm, cs = string.match(cut, '^(%d+)-(%d+)$')
  redis.call('XTRIM', KEYS[1], 'MINID', '=', cm .. '-' .. string.format('%.0f', tonumber(cs) + 1))
  redis.call('XSETID', KEYS[1], top, 'MAXDELETEDID', cut)
end
if not id then
  if cut then redis.call('SET', KEYS[3], bytes, 'KEEPTTL') end
  return false
end
redis.call('SET', KEYS[3], bytes, 'PX', retention)
redis.call('PEXPIRE', KEYS[1], retention)
redis.call('SPUBLISH', KEYS[2], #id .. ':' .. id .. #ARGV[3] .. ':' .. ARGV[3] .. #ARGV[4] .. ':' .. ARGV[4] ..
  #ARGV[5] .. ':' .. ARGV[5] .. ARGV[6])
return id
`

var appendScript = redis.NewScript(appendLua)

// appendOnceScript is appendScript under an idempotency key KEYS[4] (in the
// user's slot): when the key holds an entry ID, that ID is the answer and
// nothing is appended; else the append's ID is stored under it for ARGV[9]
// ms, in the same script run.
var appendOnceScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[4])
if prev then return prev end
` + strings.Replace(appendLua, "\nreturn id\n", "\nredis.call('SET', KEYS[4], id, 'PX', tonumber(ARGV[9]))\nreturn id\n", 1))

// readScript returns {0, entries} with up to ARGV[2] entries strictly after
// the offset ARGV[1], or {1} when that would not be the complete history
// after it: the offset is older than the retention ARGV[3] (ms), lies beyond
// the stream's last ID, entries after it were trimmed, or the stream is
// missing and the offset predates the user's epoch KEYS[2] (Redis lost the
// stream: restarted without persistence). The offset has
// been validated (canonical "<ms>-<seq>", ms < 2^53).
var readScript = redis.NewScript(luaCmp + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local after = ARGV[1]
local ams = tonumber(string.match(after, '^(%d+)'))
if ams + tonumber(ARGV[3]) <= now then return {1} end
local epoch = tonumber(redis.call('GET', KEYS[2]) or now)
redis.call('SET', KEYS[2], string.format('%.0f', epoch), 'PX', ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ams > now then return {1} end
  -- Redis knows this user only since epoch: a missing stream is an empty
  -- history only for an offset from then on (else Redis lost it).
  if ams < epoch - 1 then return {1} end
  return {0, {}}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last, maxdel = '0-0', '0-0'
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1]
  elseif info[i] == 'max-deleted-entry-id' then maxdel = info[i + 1] end
end
if cmp(after, last) > 0 or cmp(maxdel, after) > 0 then return {1} end
return {0, redis.call('XRANGE', KEYS[1], '(' .. after, '+', 'COUNT', ARGV[2])}
`)

// lastScript returns the newest entry ID, or, for a missing stream, the ID
// just before the current millisecond, which precedes any entry added later
// (a new stream's first ID is at least <now>-0).
//
// It also starts the user's epoch KEYS[2] (when Redis first knew the user,
// kept for the retention ARGV[1]): Redis restarted without its data loses
// the epoch with the stream, so readScript can tell a lost history from an
// empty one.
var lastScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not redis.call('SET', KEYS[2], string.format('%.0f', now), 'NX', 'PX', ARGV[1]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #e > 0 then return e[1][1] end
return string.format('%.0f', now - 1) .. '-0'
`)

// addMemberScript adds ARGV[1] to the durable room KEYS[1] unless the room
// holds ARGV[2] members already. Returns 1 when added or already a member,
// 0 when the room is full.
var addMemberScript = redis.NewScript(`
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 1
`)
