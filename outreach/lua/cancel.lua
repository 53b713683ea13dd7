-- cancel.lua: leave a tombstone on a send so it never goes out.
--
-- KEYS[1]  due zset of the shard
-- KEYS[2]  inflight zset of the shard
-- KEYS[3]  the send hash
-- KEYS[4]  the send's log list
-- KEYS[5]  outcomes zset (a cancelled send's final state counts in reports)
-- KEYS[6]  stats hash
-- KEYS[7]  the customer's set of open sends
-- ARGV[1]  send id
-- ARGV[2]  reason (kept in the hash's 'cancelled' field)
-- ARGV[3]  log entry (JSON)
-- ARGV[4]  now in UTC ms
-- ARGV[5]  the shard's key tag ("<prefix>{<shard>}:")
-- ARGV[6]  how long a send is kept after its final state, in ms (0: for ever)
--
-- A send still in compact form gets its own hash first, so its cancellation is
-- on record. A send already being attempted ('sending') keeps its state: the
-- attempt may have reached the provider. Its tombstone stops any retry or later
-- claim. Returns the state the send had ('' when unknown).
local state = redis.call('HGET', KEYS[3], 'state')
if not state then
  local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not (due and materialize(ARGV[5], ARGV[1], due)) then
    return ''
  end
  state = 'scheduled'
end
if FINAL[state] then
  return state
end
redis.call('HSET', KEYS[3], 'cancelled', ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if state ~= 'sending' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[3], 'state', 'cancelled', 'finished_ms', ARGV[4])
  redis.call('HDEL', KEYS[3], 'token')
  redis.call('ZADD', KEYS[5], tonumber(ARGV[4]), ARGV[1])
  redis.call('SREM', KEYS[7], ARGV[1])
  redis.call('HINCRBY', KEYS[6], 'sends:cancelled:' .. ARGV[2], 1)
end
redis.call('RPUSH', KEYS[4], ARGV[3])
if state ~= 'sending' then
  retire(ARGV[5], ARGV[1], ARGV[6])
end
return state
