-- claim_index.lua: take due members of an index and push them back by a lease.
--
-- KEYS[1]  index zset   member -> due UTC ms
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  most members to take
-- ARGV[3]  lease in ms: members stay in the index, due again after it, so a
--          crash between claim and use loses nothing
--
-- Returns {member1, due1, member2, due2, ...} with the due times they had.
local index_key = KEYS[1]
local now = now_ms(ARGV[1])
local limit = ARGV[2]
local lease = ARGV[3]
local rows = redis.call('ZRANGEBYSCORE', index_key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(limit))
local later = now + tonumber(lease)
for i = 1, #rows, 2 do
  redis.call('ZADD', index_key, later, rows[i])
end
return rows
