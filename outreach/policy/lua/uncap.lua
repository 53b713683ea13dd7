-- uncap.lua: give back the cap slot (and the survey-fatigue lock) a send took and never used.
--
-- KEYS[1..4] the counters cap.lua incremented for the send (read from its marker)
-- KEYS[5]    the customer's survey-fatigue lock
-- KEYS[6]    the send's slot marker
-- ARGV[1]    send id
--
-- A send that took a slot and then ended without reaching its provider (failed,
-- suppressed or cancelled at the hand-over) frees it: the counters go down by one
-- (never below zero), the fatigue lock goes when this send holds it, the marker goes.
-- Returns 1 when a slot was given back, 0 when the send held none.
local counter_keys = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
local fatigue_key = KEYS[5]
local slot_key = KEYS[6]
local send_id = ARGV[1]
if redis.call('EXISTS', slot_key) == 0 then
  return 0
end
for i = 1, 4 do
  if tonumber(redis.call('GET', counter_keys[i]) or '0') > 0 then
    redis.call('DECR', counter_keys[i])
  end
end
local holder = redis.call('GET', fatigue_key)
if holder and string.sub(holder, 1, #send_id + 1) == send_id .. ' ' then
  redis.call('DEL', fatigue_key)
end
redis.call('DEL', slot_key)
return 1
