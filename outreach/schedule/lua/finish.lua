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
local inflight_key = KEYS[1]
local due_key = KEYS[2]
local send_key = KEYS[3]
local log_key = KEYS[4]
local outcomes_key = KEYS[5]
local stats_key = KEYS[6]
local open_key = KEYS[7]
local send_id = ARGV[1]
local state = ARGV[2]
local due_ms = ARGV[3]
local entry = ARGV[4]
local field_name, field_value = ARGV[5], ARGV[6]
local now = ARGV[7]
local reason = ARGV[8]
local latency_bucket = ARGV[9]
local claim = ARGV[10]
local latency = ARGV[11]
local history_ms = ARGV[12]
local tag = ARGV[13]
local FIRST_NOTE = 14
if redis.call('EXISTS', send_key) == 0 then
  -- Erased while the attempt ran: record nothing, recreate nothing.
  redis.call('ZREM', inflight_key, send_id)
  return 'erased'
end
if #ARGV >= FIRST_NOTE then
  redis.call('RPUSH', log_key, unpack(ARGV, FIRST_NOTE))
end
local current = redis.call('HMGET', send_key, 'token', 'handing')
local token, handing = current[1], current[2]
local stale = claim ~= '' and token ~= claim
local later = state == 'retry_scheduled' or state == 'deferred'
if stale and state ~= 'delivered' then
  redis.call('RPUSH', log_key, entry)
  redis.call('HINCRBY', stats_key, 'sends:stale:' .. state, 1)
  return 'stale'
end
redis.call('ZREM', inflight_key, send_id)
local fields = {'state', state}
if claim ~= '' and handing == claim then
  -- This attempt's hand-over has its answer: a cancellation from now on is in time again.
  fields[#fields + 1] = 'handing'
  fields[#fields + 1] = ''
end
if later then
  if redis.call('HEXISTS', send_key, 'cancelled') == 1 then
    state = 'cancelled'
    fields[2] = state
    later = false
  else
    redis.call('ZADD', due_key, tonumber(due_ms), send_id)
    fields[#fields + 1] = 'due_ms'
    fields[#fields + 1] = due_ms
    if state == 'deferred' then
      -- Nothing was handed over: a deferral is not a delivery attempt.
      redis.call('HINCRBY', send_key, 'attempts', -1)
    end
  end
end
if not later then
  redis.call('ZREM', due_key, send_id)
  redis.call('HDEL', send_key, 'token')
  fields[#fields + 1] = 'finished_ms'
  fields[#fields + 1] = now
  redis.call('ZADD', outcomes_key, tonumber(now), send_id)
  redis.call('SREM', open_key, send_id)
end
if field_name ~= '' then
  fields[#fields + 1] = field_name
  fields[#fields + 1] = field_value
end
redis.call('HSET', send_key, unpack(fields))
redis.call('HINCRBY', stats_key, 'sends:' .. state .. ':' .. reason, 1)
if latency_bucket ~= '' then
  redis.call('HINCRBY', stats_key, latency_bucket, 1)
  redis.call('HINCRBYFLOAT', stats_key, 'latency:sum', latency)
end
redis.call('RPUSH', log_key, entry)
if not later then
  count_broadcast(tag, send_id, 'sent:' .. state)
  retire(tag, send_id, history_ms)
end
return state
