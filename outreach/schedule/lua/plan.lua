-- plan.lua: add a planned send once, in compact form; planning the same send id again is a no-op.
--
-- KEYS[1]  due zset of the shard
-- KEYS[2]  the customer's plan hash: <event digest><step digest> -> intent ref,
--          <event digest> -> event (start, ingested, id), <event digest>d -> event data
-- KEYS[3]  the send's own hash (exists once the send left the compact form)
-- ARGV[1]  send id
-- ARGV[2]  due UTC ms
-- ARGV[3]  field of the send (<event digest><step digest>)
-- ARGV[4]  field of its event (<event digest>)
-- ARGV[5]  intent ref (a field of the intents hash)
-- ARGV[6]  the event field's value
-- ARGV[7]  the event's data as JSON ('' for none)
--
-- Returns 1 when planned, 0 when the send id already existed.
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[5])
redis.call('HSETNX', KEYS[2], ARGV[4], ARGV[6])
if ARGV[7] ~= '' then
  redis.call('HSETNX', KEYS[2], ARGV[4] .. 'd', ARGV[7])
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[1])
return 1
