-- claim_index.lua: take due members of an index and push them back by a lease.
--
-- KEYS[1]  index zset   member -> due UTC ms
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  most members to take
-- ARGV[3]  lease in ms: members stay in the index, due again after it, so a
--          crash between claim and use loses nothing
--
-- Returns {member1, due1, member2, due2, ...} with the due times they had.
local now = now_ms(ARGV[1])
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local later = now + tonumber(ARGV[3])
for i = 1, #rows, 2 do
  redis.call('ZADD', KEYS[1], later, rows[i])
end
return rows
