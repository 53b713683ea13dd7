-- claim.lua: take due sends of one shard and lease them to the caller, atomically.
--
-- KEYS[1]  due zset       send id -> due UTC ms
-- KEYS[2]  inflight zset  send id -> lease deadline UTC ms
-- KEYS[3]  claim counter  source of claim tokens
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  most ids to take (bounded: a long script blocks Redis)
-- ARGV[3]  lease length in ms
-- ARGV[4]  the shard's key tag ("<prefix>{<shard>}:")
--
-- Returns {now, id1, token1, id2, token2, ...}. A send still in compact form gets
-- its own hash first. Ids that already reached a final state (or whose record is
-- gone) are dropped from the due set instead. A token names one claim: a deliver
-- message carrying a stale token (its lease expired and the send was claimed
-- again) is ignored by begin.lua.
local due_key = KEYS[1]
local inflight_key = KEYS[2]
local counter_key = KEYS[3]
local now = now_ms(ARGV[1])
local limit = ARGV[2]
local lease = ARGV[3]
local tag = ARGV[4]
local rows = redis.call('ZRANGEBYSCORE', due_key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(limit))
local out = {now}
local count = #rows / 2
if count == 0 then
  return out
end
-- The rows are the lowest ranks of the set: one command removes them all.
redis.call('ZREMRANGEBYRANK', due_key, 0, count - 1)
local deadline = now + tonumber(lease)
local last = redis.call('INCRBY', counter_key, count)
local leased = {}
for i = 1, count do
  local id = rows[2 * i - 1]
  local key = tag .. 'send:' .. id
  local state = redis.call('HGET', key, 'state')
  if not state and materialize(tag, id, rows[2 * i]) then
    state = 'scheduled'
  end
  if state and not FINAL[state] then
    local token = tostring(last - count + i)
    redis.call('HSET', key, 'state', 'claimed', 'token', token)
    leased[#leased + 1] = deadline
    leased[#leased + 1] = id
    out[#out + 1] = id
    out[#out + 1] = token
  end
end
if #leased > 0 then
  redis.call('ZADD', inflight_key, unpack(leased))
end
return out
