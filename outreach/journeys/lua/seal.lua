-- seal.lua: a digest send is about to be rendered: the events it lists are its own from now on.
--
-- KEYS[1]  the collection (collect.lua)
-- KEYS[2]  the send's items: event id -> JSON [event time ms, event data]
-- KEYS[3]  the customer's set of keys that name them (erased with the customer)
-- ARGV[1]  send id
-- ARGV[2]  the items' time to live in seconds
--
-- If the send is the open one, the collection opens no more items for it: the next event opens
-- the next send. Its items move to its own hash. Sealing again (a retry) moves nothing more and
-- returns the same items: the message lists the same events on every attempt. The marks of
-- events listed by sends sealed before this one are let go (they guard against a replay of an
-- event while its digest is open, and one window after).
local state, items, send_id = KEYS[1], KEYS[2], ARGV[1]
if redis.call('HGET', state, 'open') == send_id then
  redis.call('HDEL', state, 'open', 'n')
end
local prefix = 'i:' .. send_id .. ':'
local open = redis.call('HGET', state, 'open')
local fields = redis.call('HGETALL', state)
local moved = {}
for i = 1, #fields, 2 do
  local name, value = fields[i], fields[i + 1]
  if string.sub(name, 1, #prefix) == prefix then
    redis.call('HSET', items, string.sub(name, #prefix + 1), value)
    moved[#moved + 1] = name
  elseif string.sub(name, 1, 2) == 'e:' and value ~= send_id and value ~= open
      and redis.call('HEXISTS', state, 'i:' .. value .. ':' .. string.sub(name, 3)) == 0 then
    moved[#moved + 1] = name  -- listed by a send sealed before: a replay that late is not expected
  end
end
if #moved > 0 then
  redis.call('HDEL', state, unpack(moved))
  redis.call('EXPIRE', items, tonumber(ARGV[2]))
  redis.call('SADD', KEYS[3], items)
end
return redis.call('HGETALL', items)
