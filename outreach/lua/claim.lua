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
-- Returns {now, id1, token1, id2, token2, ...}. A token names one claim: a
-- deliver message carrying a stale token (its lease expired and the send was
-- claimed again) is ignored by begin.lua.
local now = ARGV[1]
if now == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(now)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {now}
if #ids == 0 then
  return out
end
local deadline = now + tonumber(ARGV[3])
local last = redis.call('INCRBY', KEYS[3], #ids)
for i, id in ipairs(ids) do
  local token = tostring(last - #ids + i)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], deadline, id)
  redis.call('HSET', ARGV[4] .. id, 'state', 'claimed', 'token', token)
  out[#out + 1] = id
  out[#out + 1] = token
end
return out
