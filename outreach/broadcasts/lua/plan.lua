-- plan.lua: one batch of a broadcast's recipients of one shard, planned in the broadcast's compact
-- form, and the planner's cursor and counts moved on with it, in one step.
--
-- KEYS[1]  due zset of the shard
-- KEYS[2]  the broadcast's hash in the shard: cursor, counters, 'cancelled' once cancelled,
--          'slot:<due ms>' sends spread from that instant so far, 'data' (the broadcast's data),
--          'm:<intent ref>' the event's value for the sends of that intent, and one field per
--          planned send: '>' .. customer -> intent ref [.. '|' .. the send's own data]
-- ARGV[1]  the shard's key tag ("<prefix>{<shard>}:")
-- ARGV[2]  the cursor this batch starts from ('' at the start)
-- ARGV[3]  the cursor after it ('end': the shard is done)
-- ARGV[4]  customers the batch looked at
-- ARGV[5]  customers it skipped, as 'reason=count' separated by ',' ('' for none)
-- ARGV[6]  the broadcast's data as JSON ('' for none)
-- ARGV[7]  milliseconds between two sends of the shard due at the same instant ('0': no spreading)
-- ARGV[8..] eight per recipient: send id, due UTC ms, intent ref, the event's value for that
--          intent, the send's own data as JSON ('' for the broadcast's), the 'done' hash of this
--          generation and of the one before, the send's mark in them
--
-- A send planned here has no key of its own: its due-set entry and one field of the broadcast's
-- hash (from_broadcast in store/lua/_prelude.lua gives it a hash of its own when it is claimed or
-- cancelled). A cancelled broadcast plans nothing more: the cancel writes 'cancelled' to every
-- shard's hash first, and this script reads it in the same step it plans. A batch whose starting
-- cursor is not the stored one was planned already (another planner, or a run that died after
-- it): it plans nothing and counts nothing. A recipient already planned (in any form, or
-- finished and archived) or erased meanwhile is left alone.
-- Returns {'ok', planned}, {'moved', 0, cursor now} or {'cancelled', 0}.
local due_key, bkey, tag = KEYS[1], KEYS[2], ARGV[1]
if redis.call('HEXISTS', bkey, 'cancelled') == 1 then
  return {'cancelled', 0}
end
local cursor = redis.call('HGET', bkey, 'cursor') or ''
if cursor ~= ARGV[2] then
  return {'moved', 0, cursor}
end
if ARGV[6] ~= '' then
  redis.call('HSETNX', bkey, 'data', ARGV[6])
end
local step = tonumber(ARGV[7]) or 0
local planned, gone = 0, 0
for i = 8, #ARGV, 8 do
  local id, due, ref = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local customer = string.sub(id, 21)
  local field = '>' .. customer
  if redis.call('EXISTS', tag .. 'customer:' .. customer) == 0 then
    gone = gone + 1
  elseif redis.call('HEXISTS', bkey, field) == 0 and redis.call('EXISTS', tag .. 'send:' .. id) == 0
      and redis.call('HEXISTS', ARGV[i + 5], ARGV[i + 7]) == 0
      and redis.call('HEXISTS', ARGV[i + 6], ARGV[i + 7]) == 0 then
    local slot, k = 'slot:' .. due, 0
    if step > 0 then
      k = tonumber(redis.call('HINCRBY', bkey, slot, 1)) - 1
    end
    redis.call('HSETNX', bkey, 'm:' .. ref, ARGV[i + 3])
    redis.call('HSET', bkey, field, ARGV[i + 4] == '' and ref or (ref .. '|' .. ARGV[i + 4]))
    redis.call('ZADD', due_key, string.format('%d', tonumber(due) + math.floor(k * step)), id)
    planned = planned + 1
  end
end
redis.call('HSET', bkey, 'cursor', ARGV[3])
redis.call('HINCRBY', bkey, 'seen', tonumber(ARGV[4]))
if planned > 0 then
  redis.call('HINCRBY', bkey, 'planned', planned)
end
if gone > 0 then
  redis.call('HINCRBY', bkey, 'skipped:customer_gone', gone)
end
for reason, count in string.gmatch(ARGV[5], '([%w_]+)=(%d+)') do
  redis.call('HINCRBY', bkey, 'skipped:' .. reason, tonumber(count))
end
return {'ok', planned}
