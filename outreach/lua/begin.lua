-- begin.lua: start delivery attempts for claimed sends, honouring tombstones.
--
-- KEYS[1]  inflight zset  send id -> lease deadline UTC ms
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  lease length in ms (renewed for the attempt)
-- ARGV[3]  key prefix of send hashes ("<prefix>send:")
-- KEYS[2]  outcomes zset, KEYS[3] stats hash (a tombstone found here is a final state)
-- ARGV[4..] pairs: send id, claim token
--
-- Returns one status per pair:
--   'go'         the caller owns this attempt (state is now 'sending')
--   'stale'      the token is not the send's current claim: someone else owns it
--   'cancelled'  a tombstone was found: the send is cancelled and released
--   other        the send already ended in this state (delivered, failed, ...)
local now = now_ms(ARGV[1])
local lease = tonumber(ARGV[2])
local out = {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local key = ARGV[3] .. id
  local fields = redis.call('HMGET', key, 'state', 'token', 'cancelled')
  local state, token, cancelled = fields[1], fields[2], fields[3]
  if not state then
    redis.call('ZREM', KEYS[1], id)
    out[#out + 1] = 'missing'
  elseif state == 'delivered' or state == 'failed' or state == 'suppressed' or state == 'cancelled' then
    out[#out + 1] = state
  elseif cancelled then
    redis.call('HSET', key, 'state', 'cancelled', 'finished_ms', now)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', KEYS[2], now, id)
    redis.call('HINCRBY', KEYS[3], 'sends:cancelled:' .. cancelled, 1)
    out[#out + 1] = 'cancelled'
  elseif token ~= ARGV[i + 1] then
    out[#out + 1] = 'stale'
  else
    redis.call('HSET', key, 'state', 'sending')
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('ZADD', KEYS[1], now + lease, id)
    out[#out + 1] = 'go'
  end
end
return out
