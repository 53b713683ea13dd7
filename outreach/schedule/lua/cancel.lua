-- cancel.lua: leave a tombstone on a send so it never goes out, and say whether it was in time.
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
-- ARGV[3]  log entry (JSON) when the cancellation is in time
-- ARGV[4]  now in UTC ms
-- ARGV[5]  the shard's key tag ("<prefix>{<shard>}:")
-- ARGV[6]  how long a send is kept after its final state, in ms (0: for ever)
-- ARGV[7]  log entry (JSON) when it is too late: a hand-over already began
--
-- A send still in compact form gets its own hash first, so its cancellation is
-- on record. The hand-over gate (handover.lua) and this script both run on the
-- send's shard, so one of them comes first:
--   * no hand-over under way (planned, claimed, being decided or rendered, or
--     waiting for a retry): the send is cancelled at once and no provider will
--     be asked for it from now on;
--   * a hand-over passed the gate and its outcome is not recorded yet ('handing'
--     is set): the provider may have the message. The tombstone still stops any
--     retry or later attempt.
-- Returns {outcome, state before, handed_ms}: outcome 'cancelled', 'too_late'
-- (handed_ms: when the hand-over began; for a delivered send, its last one),
-- 'final' (the send had already ended otherwise) or 'unknown'.
local due_key = KEYS[1]
local send_key = KEYS[3]
local log_key = KEYS[4]
-- KEYS[2], KEYS[5], KEYS[6] and KEYS[7] are the tag's 'inflight', 'outcomes', 'stats' and the
-- customer's 'open:' set: close_cancelled writes them.
local send_id = ARGV[1]
local reason = ARGV[2]
local entry = ARGV[3]
local now = ARGV[4]
local tag = ARGV[5]
local history_ms = ARGV[6]
local late_entry = ARGV[7]
local state = redis.call('HGET', send_key, 'state')
if not state then
  local due = redis.call('ZSCORE', due_key, send_id)
  if not (due and materialize(tag, send_id, due)) then
    return {'unknown', '', ''}
  end
  state = 'scheduled'
end
local fields = redis.call('HMGET', send_key, 'handing', 'handed_ms')
local handing, handed = fields[1], fields[2] or ''
if state == 'delivered' then
  return {'too_late', state, handed}
end
if FINAL[state] then
  return {'final', state, handed}
end
if handing and handing ~= '' then
  redis.call('RPUSH', log_key, late_entry)
  if state == 'sending' then
    -- The attempt under way owns the send: the tombstone stops its retry, its next
    -- channel, and any later attempt.
    redis.call('HSET', send_key, 'cancelled', reason)
  else
    -- That hand-over's lease was reaped (its worker died or outlived it): nothing
    -- owns the send, so it ends here; a late 'delivered' from that worker is still
    -- recorded, because it happened.
    close_cancelled(tag, send_id, reason, now, history_ms)
  end
  return {'too_late', state, handed}
end
redis.call('RPUSH', log_key, entry)
close_cancelled(tag, send_id, reason, now, history_ms)
return {'cancelled', state, handed}
