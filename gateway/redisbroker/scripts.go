package redisbroker

import "github.com/redis/go-redis/v9"

// publishScript appends a message to a channel, atomically:
//
//	KEYS[1]  the channel's meta hash: base and last offsets
//	KEYS[2]  the channel's stream: one entry per held message, with ID
//	         "<offset>-0" and fields d (data), t (Redis time in ms) and
//	         p (offset of the message before, 0 for the first)
//	KEYS[3]  the channel's live PUB/SUB channel
//	ARGV[1]  data
//	ARGV[2]  history size: the stream's MAXLEN
//	ARGV[3]  history TTL in ms: both keys expire after it, from the last
//	         publish
//	ARGV[4]  PUBLISH, or SPUBLISH on a cluster (sharded PUB/SUB; KEYS[3]
//	         has the hash tag of the keys, so it is on their shard)
//
// It returns {offset, prev}, and publishes "<offset> <prev> <data>" on
// KEYS[3]. Taking the offset with HINCRBY and using it as the entry's ID
// in one script makes offset order the stream's order, and XRANGE by
// offset direct.
//
// A channel with no meta gets a base from Redis' clock in microseconds,
// above anything its stream still holds, so offsets never go back even
// when the keys expired or were lost (gateway.Broker). Lua numbers are
// doubles: offsets stay exact below 2^53, which the clock reaches in
// the year 2255. string.format('%d') writes them without an exponent.
var publishScript = redis.NewScript(`
local meta = redis.call('HMGET', KEYS[1], 'base', 'last')
local base = meta[1]
local now = redis.call('TIME')
if not base then
  local b = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if top[1] then
    local held = tonumber(string.match(top[1][1], '^%d+'))
    if held > b then b = held end
  end
  base = string.format('%d', b)
  redis.call('HSET', KEYS[1], 'base', base, 'last', base)
end
local n = redis.call('HINCRBY', KEYS[1], 'last', 1)
local prev = n - 1
if string.format('%d', prev) == base then prev = 0 end
local ms = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[2], string.format('%d-0', n),
  'd', ARGV[1], 't', ms, 'p', string.format('%d', prev))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call(ARGV[4], KEYS[3], string.format('%d %d ', n, prev) .. ARGV[1])
return {n, prev}
`)

// historyScript reads what a channel holds, in one consistent snapshot:
//
//	KEYS[1], KEYS[2]  as for publishScript
//	ARGV[1]           since: an offset, or "latest" for the latest alone
//	ARGV[2]           history TTL in ms: older entries are not returned
//
// It returns {base, last, oldest, entries}: the meta (0, 0 if the channel
// does not exist), the offset of the oldest entry within the TTL (0 if
// none), and the entries within the TTL after since, as XRANGE gives
// them. The stream holds at most the history size, so reading it whole
// here costs little and keeps the TTL exact.
var historyScript = redis.NewScript(`
local meta = redis.call('HMGET', KEYS[1], 'base', 'last')
if not meta[1] then return {'0', '0', '0', {}} end
if ARGV[1] == 'latest' then return {meta[1], meta[2], '0', {}} end
local since = tonumber(ARGV[1])
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2])
local oldest = '0'
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
  local f, t = e[2], 0
  for i = 1, #f, 2 do
    if f[i] == 't' then t = tonumber(f[i + 1]) end
  end
  if t >= cutoff then
    local off = string.match(e[1], '^%d+')
    if oldest == '0' then oldest = off end
    if tonumber(off) > since then out[#out + 1] = e end
  end
end
return {meta[1], meta[2], oldest, out}
`)
