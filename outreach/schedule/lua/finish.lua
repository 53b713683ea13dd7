-- finish.lua: record the outcome of a delivery attempt and release the lease.
--
-- KEYS[1]  inflight zset
-- KEYS[2]  due zset
-- KEYS[3]  the send hash
-- KEYS[4]  the send's log list
-- KEYS[5]  outcomes zset: send id -> UTC ms of its final state (reports)
-- KEYS[6]  stats hash: counters by outcome and reason, delivery latency buckets (metrics)
-- KEYS[7]  the customer's set of open sends (a final state leaves it)
-- ARGV[1]  send id
-- ARGV[2]  new state: delivered | failed | suppressed | retry_scheduled | deferred
-- ARGV[3]  due UTC ms for retry_scheduled / deferred, else ''
-- ARGV[4]  log entry (JSON)
-- ARGV[5]  extra hash field name ('' for none), ARGV[6] its value
-- ARGV[7]  now in UTC ms
-- ARGV[8]  reason code (counted in the stats)
-- ARGV[9]  latency bucket field to count ('' for none)
-- ARGV[10] the claim token of the attempt ('' when not known)
-- ARGV[11] delivery latency in seconds, added to the histogram's sum ('' for none)
-- ARGV[12] how long a send is kept after its final state, in ms (0: for ever)
-- ARGV[13] the shard's key tag ("<prefix>{<shard>}:")
-- ARGV[14..] earlier history entries of this attempt (fall-throughs), written first
--
-- An attempt that outlived its lease may finish after the send was reaped and
-- claimed again: its token is then stale. A stale delivery is still recorded
-- (it happened: the newer claim will find the send delivered and skip it); any
-- other stale outcome is only logged, because the newer claim owns the send.
-- A tombstone that arrived during the attempt wins over a retry or deferral.
-- Recording an outcome ends the attempt's own hand-over ('handing' holds its token and
-- is emptied; 'handed_ms' stays); another attempt's hand-over is left as it is.
-- A final state leaves both the in-flight and the due set.
-- Returns the state recorded, 'stale' or 'erased'.
local state = ARGV[2]
if redis.call('EXISTS', KEYS[3]) == 0 then
  -- Erased while the attempt ran: record nothing, recreate nothing.
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 'erased'
end
if #ARGV >= 14 then
  redis.call('RPUSH', KEYS[4], unpack(ARGV, 14))
end
local current = redis.call('HMGET', KEYS[3], 'token', 'handing')
local token, handing = current[1], current[2]
local stale = ARGV[10] ~= '' and token ~= ARGV[10]
local later = state == 'retry_scheduled' or state == 'deferred'
if stale and state ~= 'delivered' then
  redis.call('RPUSH', KEYS[4], ARGV[4])
  redis.call('HINCRBY', KEYS[6], 'sends:stale:' .. state, 1)
  return 'stale'
end
redis.call('ZREM', KEYS[1], ARGV[1])
local fields = {'state', state}
if ARGV[10] ~= '' and handing == ARGV[10] then
  -- This attempt's hand-over has its answer: a cancellation from now on is in time again.
  fields[#fields + 1] = 'handing'
  fields[#fields + 1] = ''
end
if later then
  if redis.call('HEXISTS', KEYS[3], 'cancelled') == 1 then
    state = 'cancelled'
    fields[2] = state
    later = false
  else
    redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[1])
    fields[#fields + 1] = 'due_ms'
    fields[#fields + 1] = ARGV[3]
    if state == 'deferred' then
      -- Nothing was handed over: a deferral is not a delivery attempt.
      redis.call('HINCRBY', KEYS[3], 'attempts', -1)
    end
  end
end
if not later then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], 'token')
  fields[#fields + 1] = 'finished_ms'
  fields[#fields + 1] = ARGV[7]
  redis.call('ZADD', KEYS[5], tonumber(ARGV[7]), ARGV[1])
  redis.call('SREM', KEYS[7], ARGV[1])
end
if ARGV[5] ~= '' then
  fields[#fields + 1] = ARGV[5]
  fields[#fields + 1] = ARGV[6]
end
redis.call('HSET', KEYS[3], unpack(fields))
redis.call('HINCRBY', KEYS[6], 'sends:' .. state .. ':' .. ARGV[8], 1)
if ARGV[9] ~= '' then
  redis.call('HINCRBY', KEYS[6], ARGV[9], 1)
  redis.call('HINCRBYFLOAT', KEYS[6], 'latency:sum', ARGV[11])
end
redis.call('RPUSH', KEYS[4], ARGV[4])
if not later then
  retire(ARGV[13], ARGV[1], ARGV[12])
end
return state
