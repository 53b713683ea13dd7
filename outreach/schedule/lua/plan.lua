-- plan.lua: add a planned send once, in compact form; planning the same send id again is a no-op.
--
-- KEYS[1]  due zset of the shard
-- KEYS[2]  the customer's plan hash: <event digest><step digest> -> intent ref,
--          <event digest> -> event (start, ingested, id), <event digest>d -> event data
-- KEYS[3]  the send's own hash (exists once the send left the compact form)
-- ARGV[1]  send id
-- ARGV[2]  due UTC ms
-- ARGV[3]  field of the send (<event digest><step digest>)
-- ARGV[4]  field of its event (<event digest>)
-- ARGV[5]  intent ref (a field of the intents hash)
-- ARGV[6]  the event field's value
-- ARGV[7]  the event's data as JSON ('' for none)
--
-- Returns 1 when planned, 0 when the send id already existed.
local due_key = KEYS[1]
local plan_key = KEYS[2]
local send_key = KEYS[3]
local send_id = ARGV[1]
local due_ms = ARGV[2]
local send_field = ARGV[3]
local event_field = ARGV[4]
local intent_ref = ARGV[5]
local event_value = ARGV[6]
local event_data = ARGV[7]
if redis.call('EXISTS', send_key) == 1 or redis.call('HEXISTS', plan_key, send_field) == 1 then
  return 0
end
redis.call('HSET', plan_key, send_field, intent_ref)
redis.call('HSETNX', plan_key, event_field, event_value)
if event_data ~= '' then
  redis.call('HSETNX', plan_key, event_field .. 'd', event_data)
end
redis.call('ZADD', due_key, tonumber(due_ms), send_id)
return 1
