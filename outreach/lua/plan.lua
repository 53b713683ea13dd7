-- plan.lua: add a planned send once; planning the same send id again is a no-op.
--
-- KEYS[1]  due zset
-- KEYS[2]  the send hash
-- KEYS[3]  the send's log list
-- KEYS[4]  pending set of (customer, journey), for exits
-- ARGV[1]  send id
-- ARGV[2]  due UTC ms
-- ARGV[3]  log entry (JSON)
-- ARGV[4..] field, value pairs of the send hash
--
-- Returns 1 when planned, 0 when the send id already existed.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local fields = {}
for i = 4, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[3])
return 1
