-- start.lua: an event starts one journey for its customer: the supersede check and every step's
-- plan in one script, so no other event for the same key can come between them.
--
-- KEYS[1]  due zset of the shard
-- KEYS[2]  the customer's plan hash (see plan.lua)
-- KEYS[3]  the customer's set of keys that name them (erased with the customer)
-- KEYS[4]  the journey's supersede key for the event's value (one order); without one, any key
--          of the shard (unused: a cluster checks that every key is in the same slot)
-- KEYS[5]  the customer's profile (an erased customer has none: nothing is planned)
-- KEYS[6..] per step, three each, in the order of the steps in ARGV: its send hash, and the
--          'done' hashes of this generation and the one before that would hold its mark
-- ARGV[1]  the event's time in UTC ms
-- ARGV[2]  the event id
-- ARGV[3]  '1' when KEYS[4] is the supersede key, '' when the journey has no supersede_by
-- ARGV[4]  the supersede key's time to live in seconds
-- ARGV[5]  field of the event (<event digest>)
-- ARGV[6]  the event field's value
-- ARGV[7]  the event's data as JSON ('' for none)
-- ARGV[8..] per step, five each: send id, due UTC ms, field of the send, intent ref, the send's
--          mark in the 'done' hash
--
-- The supersede key holds JSON [time ms, event id, id of the event it superseded]. An
-- event is older than the one the key holds when its (time, id) is smaller: it plans
-- nothing. Otherwise the key names it from now on, and each step is planned once
-- (plan_send). The same event again (a retry after a crash) is told the event it
-- superseded again, so that the older event's sends are surely cancelled.
-- Returns {'gone'} (no profile), {'older', id of the newer event}, or {'', id of the older
-- event it supersedes or '', 1 or 0 per step: planned, or planned before}.

-- a > b byte by byte, as Python orders str (UTF-8 keeps the order of code points); Lua's own
-- comparison follows the server's locale.
local function after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x > y
    end
  end
  return #a > #b
end

local due_key, plan_key, owned_key, supersede_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', KEYS[5]) == 0 then
  return {'gone'}
end
local at_ms, event_id = tonumber(ARGV[1]), ARGV[2]
local older = ''
if ARGV[3] ~= '' then
  local raw = redis.call('GET', supersede_key)
  if raw then
    local held = cjson.decode(raw)
    local held_ms, held_id = tonumber(held[1]), held[2]
    if held_id == event_id then
      older = held[3] or ''
    elseif held_ms > at_ms or (held_ms == at_ms and after(held_id, event_id)) then
      return {'older', held_id}
    else
      older = held_id
    end
  end
  redis.call('SET', supersede_key, cjson.encode({at_ms, event_id, older}), 'EX', tonumber(ARGV[4]))
  redis.call('SADD', owned_key, supersede_key)
end
local out = {'', older}
local i = 8
local k = 6
while ARGV[i] do
  out[#out + 1] = plan_send(due_key, plan_key, KEYS[k], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[5],
    ARGV[i + 3], ARGV[6], ARGV[7], KEYS[k + 1], KEYS[k + 2], ARGV[i + 4])
  i = i + 5
  k = k + 3
end
return out
