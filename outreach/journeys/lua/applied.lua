-- applied.lua: events of one shard were applied: marked 'done' and out of the inbox, at once.
--
-- KEYS[1]  inbox zset   KEYS[2] inbox events hash   KEYS[3] inbox tries hash
-- KEYS[4..] each event's marker
-- ARGV[1]  the markers' time to live in seconds
-- ARGV[2..] the event ids, in the order of KEYS[4..]
local ttl = tonumber(ARGV[1])
for i = 4, #KEYS do
  local id = ARGV[i - 2]
  redis.call('SET', KEYS[i], 'done', 'EX', ttl)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
return #KEYS - 3
