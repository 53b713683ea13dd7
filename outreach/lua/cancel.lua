-- cancel.lua: leave a tombstone on a send so it never goes out.
--
-- KEYS[1]  due zset
-- KEYS[2]  inflight zset
-- KEYS[3]  the send hash
-- KEYS[4]  the send's log list
-- ARGV[1]  send id
-- ARGV[2]  reason (kept in the hash's 'cancelled' field)
-- ARGV[3]  log entry (JSON)
-- KEYS[5]  outcomes zset (a cancelled send's final state counts in reports)
-- KEYS[6]  stats hash
-- ARGV[4]  now in UTC ms
--
-- A send already being attempted ('sending') keeps its state: the attempt may
-- have reached the provider. Its tombstone stops any retry or later claim.
-- Returns the state the send had ('' when unknown).
local state = redis.call('HGET', KEYS[3], 'state')
if not state then
  return ''
end
if state == 'delivered' or state == 'failed' or state == 'suppressed' or state == 'cancelled' then
  return state
end
redis.call('HSET', KEYS[3], 'cancelled', ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if state ~= 'sending' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[3], 'state', 'cancelled', 'finished_ms', ARGV[4])
  redis.call('HDEL', KEYS[3], 'token')
  redis.call('ZADD', KEYS[5], tonumber(ARGV[4]), ARGV[1])
  redis.call('HINCRBY', KEYS[6], 'sends:cancelled:' .. ARGV[2], 1)
end
redis.call('RPUSH', KEYS[4], ARGV[3])
return state
