-- take.lua: a worker begins applying events of one shard: each one's marker and inbox lease at once.
--
-- KEYS[1]  inbox zset   event id -> UTC ms by which it should be applied
-- KEYS[2..] each event's marker (string: 'pending' while it is being applied, 'done' once applied)
-- ARGV[1]  the markers' time to live in seconds
-- ARGV[2]  the new deadline in UTC ms (never earlier than the one held: ZADD GT)
-- ARGV[3..] the event ids, in the order of KEYS[2..]
--
-- Returns each marker as it was: '' (new: marked 'pending' now), 'pending' (an attempt
-- died midway; every effect of an event is idempotent) or 'done' (applied already).
local inbox_key = KEYS[1]
local ttl, deadline = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 2, #KEYS do
  local held = redis.call('GET', KEYS[i])
  if not held then
    redis.call('SET', KEYS[i], 'pending', 'EX', ttl)
    held = ''
  end
  out[#out + 1] = held
  redis.call('ZADD', inbox_key, 'XX', 'GT', deadline, ARGV[i + 1])
end
return out
