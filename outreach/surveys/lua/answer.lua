-- answer.lua: keep the answer to a survey send that is still in Redis (not archived yet).
--
-- KEYS[1]  the send hash          KEYS[2] the answer hash
-- KEYS[3]  the shard's answers index (send id -> UTC ms of the latest change)
-- KEYS[4]  the customer's set of answered sends
-- KEYS[5]  the shard's stats hash
-- ARGV[1]  send id   ARGV[2] now in UTC ms   ARGV[3] the stats field to count ('' for none)
-- ARGV[4]  '1' when the send had ended when it was read (it may have been archived since)
-- ARGV[5..] field, value pairs to set: a new answer (its version goes up by one, its first time
--          is kept, 'scored_ms' is now), or only a comment. Every write counts in 'changes' (the
--          archive's mover sees by it that an answer changed after it read it)
--
-- Returns 'gone' when an ended send has no hash any more (archived: the answer goes to the
-- archive), 'none' when a comment has no answer to go with, else 'ok'.
local send_key, answer_key, index_key, answered_key, stats_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, now, counted, ended = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
if ended and redis.call('EXISTS', send_key) == 0 then
  return 'gone'
end
if counted == '' then
  if redis.call('EXISTS', answer_key) == 0 then
    return 'none'
  end
else
  redis.call('HSETNX', answer_key, 'answered_ms', now)
  redis.call('HINCRBY', answer_key, 'version', 1)
  redis.call('HSET', answer_key, 'scored_ms', now)
  redis.call('ZADD', index_key, tonumber(now), id)
  redis.call('SADD', answered_key, id)
  redis.call('HINCRBY', stats_key, counted, 1)
end
redis.call('HINCRBY', answer_key, 'changes', 1)
redis.call('HSET', answer_key, 'updated_ms', now, unpack(ARGV, 5))
return 'ok'
