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
local state = redis.call('HGET', KEYS[3], 'state')
if not state then
  local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not (due and materialize(ARGV[5], ARGV[1], due)) then
    return {'unknown', '', ''}
  end
  state = 'scheduled'
end
local fields = redis.call('HMGET', KEYS[3], 'handing', 'handed_ms')
local handing, handed = fields[1], fields[2] or ''
if state == 'delivered' then
  return {'too_late', state, handed}
end
if FINAL[state] then
  return {'final', state, handed}
end
if handing and handing ~= '' then
  redis.call('RPUSH', KEYS[4], ARGV[7])
  if state == 'sending' then
    -- The attempt under way owns the send: the tombstone stops its retry, its next
    -- channel, and any later attempt.
    redis.call('HSET', KEYS[3], 'cancelled', ARGV[2])
  else
    -- That hand-over's lease was reaped (its worker died or outlived it): nothing
    -- owns the send, so it ends here; a late 'delivered' from that worker is still
    -- recorded, because it happened.
    close_cancelled(ARGV[5], ARGV[1], ARGV[2], ARGV[4], ARGV[6])
  end
  return {'too_late', state, handed}
end
redis.call('RPUSH', KEYS[4], ARGV[3])
close_cancelled(ARGV[5], ARGV[1], ARGV[2], ARGV[4], ARGV[6])
return {'cancelled', state, handed}
