-- collect.lua: one event into a digest step's collection for its customer (and ``by`` value).
--
-- KEYS[1]  due zset of the shard
-- KEYS[2]  the customer's plan hash (see plan.lua)
-- KEYS[3]  the customer's set of keys that name them (erased with the customer)
-- KEYS[4]  the customer's profile (an erased customer has none: nothing is collected)
-- KEYS[5]  the collection: 'open' -> the send listing the events that come now, 'n' -> how many it
--          lists, 'i:<send id>:<event id>' -> an item of that send (until it is sealed),
--          'e:<event id>' -> the send that lists the event (an event is listed once)
-- KEYS[6..8] the send this event would open: its hash and its two 'done' hashes (plan.lua)
-- KEYS[9]  the hash of the send the caller read as the open one (any key of the shard when none)
-- ARGV[1]  event id
-- ARGV[2]  the item: JSON [event time ms, event data]
-- ARGV[3]  most items a send lists
-- ARGV[4]  the collection's time to live in seconds
-- ARGV[5..12] the send this event would open, as plan.lua takes it: send id, due ms, send field,
--          event field, intent ref, event field value, event data, done mark
-- ARGV[13] the send the caller read as the open one ('' for none), ARGV[14] its field in the plan
--
-- Returns {'gone'}, {'retry'} (the open send changed since the caller read it: read it again),
-- {'seen', send id} (listed already: a replay), {'joined', send id} or {'opened', send id}.
-- The open send's items are sealed when it is about to be rendered (seal.lua): an event that
-- comes after that opens the next send. An open send that ended without being rendered
-- (suppressed, cancelled, its step removed) lists no more: the event opens the next send.
local state, event_id = KEYS[5], ARGV[1]
if redis.call('EXISTS', KEYS[4]) == 0 then
  return {'gone'}
end
local seen = redis.call('HGET', state, 'e:' .. event_id)
if seen then
  return {'seen', seen}
end
local open = redis.call('HGET', state, 'open')
if (open or '') ~= ARGV[13] then
  return {'retry'}
end
if open then
  -- Still to go: planned (a field of the plan), or claimed and not final.
  local held = redis.call('HGET', KEYS[9], 'state')
  local alive = redis.call('HEXISTS', KEYS[2], ARGV[14]) == 1 or (held and not FINAL[held])
  if not alive then
    -- It ended without being rendered: what it collected goes with it.
    local prefix = 'i:' .. open .. ':'
    local fields = redis.call('HKEYS', state)
    for _, name in ipairs(fields) do
      if string.sub(name, 1, #prefix) == prefix then
        redis.call('HDEL', state, name)
      end
    end
    redis.call('HDEL', state, 'open', 'n')
    open = nil
  end
end
local verdict
if open and tonumber(redis.call('HGET', state, 'n') or '0') < tonumber(ARGV[3]) then
  redis.call('HINCRBY', state, 'n', 1)
  verdict = 'joined'
else
  open = ARGV[5]
  plan_send(KEYS[1], KEYS[2], KEYS[6], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11],
    KEYS[7], KEYS[8], ARGV[12])
  redis.call('HSET', state, 'open', open, 'n', 1)
  verdict = 'opened'
end
redis.call('HSET', state, 'i:' .. open .. ':' .. event_id, ARGV[2], 'e:' .. event_id, open)
redis.call('EXPIRE', state, tonumber(ARGV[4]))
redis.call('SADD', KEYS[3], state)
return {verdict, open}
