-- claim.lua: take due sends and lease them to the caller, atomically.
--
-- KEYS[1]  due zset       send id -> due UTC ms
-- KEYS[2]  inflight zset  send id -> lease deadline UTC ms
-- KEYS[3]  claim counter  source of claim tokens
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  most ids to take (bounded: a long script blocks Redis)
-- ARGV[3]  lease length in ms
-- ARGV[4]  key prefix of send hashes ("<prefix>send:")
--
-- Returns {now, id1, token1, id2, token2, ...}; ids that already reached a final
-- state are dropped from the due set instead. A token names one claim: a
-- deliver message carrying a stale token (its lease expired and the send was
-- claimed again) is ignored by begin.lua.
local now = now_ms(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {now}
if #ids == 0 then
  return out
end
local deadline = now + tonumber(ARGV[3])
local last = redis.call('INCRBY', KEYS[3], #ids)
for i, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local state = redis.call('HGET', ARGV[4] .. id, 'state')
  -- A send that already ended (or whose record is gone) is never claimed again.
  if state and state ~= 'delivered' and state ~= 'failed' and state ~= 'suppressed' and state ~= 'cancelled' then
    local token = tostring(last - #ids + i)
    redis.call('ZADD', KEYS[2], deadline, id)
    redis.call('HSET', ARGV[4] .. id, 'state', 'claimed', 'token', token)
    out[#out + 1] = id
    out[#out + 1] = token
  end
end
return out
