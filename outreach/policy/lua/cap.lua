-- cap.lua: take a frequency-cap slot (and the survey-fatigue lock) for one send, atomically.
--
-- KEYS[1]  counter: this category, this local day
-- KEYS[2]  counter: this category, this local ISO week
-- KEYS[3]  counter: all capped categories, this local day
-- KEYS[4]  counter: all capped categories, this local ISO week
-- KEYS[5]  survey-fatigue lock of the customer (ignored when ARGV[7] is 0)
-- KEYS[6]  marker: this send already holds a slot (JSON: the four counters and the fatigue lock taken)
-- ARGV[1..4] limits for KEYS[1..4]; -1 means no limit
-- ARGV[5]  TTL of day counters in ms
-- ARGV[6]  TTL of week counters (and of the marker) in ms
-- ARGV[7]  survey-fatigue period in ms (0: not a survey)
-- ARGV[8]  send id
-- ARGV[9]  now in ms, or '' to read the Redis server's TIME
--
-- The fatigue lock holds "<send id> <until ms>" and is compared with ARGV[9]; its
-- TTL only cleans up (a simulated clock moves faster than Redis' expiry).
--
-- Returns 'ok' (slot taken, or already held by this send), 'fatigue', or the name
-- of the first full counter: 'category_day', 'category_week', 'all_day', 'all_week'.
-- Two workers cannot both take the last slot: the check and the increment are one step.
local counter_keys = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
local fatigue_key = KEYS[5]
local slot_key = KEYS[6]
local limits = {ARGV[1], ARGV[2], ARGV[3], ARGV[4]}
local day_ttl_ms = ARGV[5]
local week_ttl_ms = ARGV[6]
local fatigue_ms = ARGV[7]
local send_id = ARGV[8]
local now_arg = ARGV[9]
if redis.call('EXISTS', slot_key) == 1 then
  return 'ok'
end
local now = now_ms(now_arg)
local fatigue = tonumber(fatigue_ms)
if fatigue > 0 then
  local holder = redis.call('GET', fatigue_key)
  if holder then
    local send, until_ms = string.match(holder, '^(.*) (%d+)$')
    if send ~= send_id and tonumber(until_ms) > now then
      return 'fatigue'
    end
  end
end
local names = {'category_day', 'category_week', 'all_day', 'all_week'}
for i = 1, 4 do
  local limit = tonumber(limits[i])
  if limit >= 0 and tonumber(redis.call('GET', counter_keys[i]) or '0') >= limit then
    return names[i]
  end
end
for i = 1, 4 do
  redis.call('INCR', counter_keys[i])
  redis.call('PEXPIRE', counter_keys[i], (i % 2 == 1) and day_ttl_ms or week_ttl_ms)
end
if fatigue > 0 then
  redis.call('SET', fatigue_key, send_id .. ' ' .. (now + fatigue), 'PX', fatigue)
end
-- The marker names what the slot took, so uncap.lua can give it back.
redis.call('SET', slot_key, cjson.encode({counter_keys[1], counter_keys[2], counter_keys[3], counter_keys[4],
  fatigue > 0 and fatigue_key or ''}), 'PX', week_ttl_ms)
return 'ok'
