-- reap.lua: return sends of one shard whose lease expired (their worker died) to the due set.
--
-- KEYS[1]  inflight zset  send id -> lease deadline UTC ms
-- KEYS[2]  due zset       send id -> due UTC ms
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  most ids to return
-- ARGV[3]  the shard's key tag ("<prefix>{<shard>}:")
--
-- The send's token is cleared, so a late message for the old claim is ignored.
-- Returns the ids returned to the schedule.
local inflight_key = KEYS[1]
local due_key = KEYS[2]
local now = now_ms(ARGV[1])
local limit = ARGV[2]
local tag = ARGV[3]
local ids = redis.call('ZRANGEBYSCORE', inflight_key, '-inf', now, 'LIMIT', 0, tonumber(limit))
for _, id in ipairs(ids) do
  local key = tag .. 'send:' .. id
  redis.call('ZREM', inflight_key, id)
  redis.call('ZADD', due_key, now, id)
  redis.call('HSET', key, 'state', 'scheduled')
  redis.call('HDEL', key, 'token')
  redis.call('RPUSH', key .. ':log',
    '{"at_ms":' .. now .. ',"what":"lease_expired","text":"lease expired before an outcome was recorded; back in the schedule"}')
end
return ids
