-- begin.lua: start delivery attempts for claimed sends of one shard, honouring tombstones.
--
-- KEYS[1]  inflight zset  send id -> lease deadline UTC ms
-- KEYS[2]  outcomes zset, KEYS[3] stats hash (a tombstone found here is a final state)
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  lease length in ms (renewed for the attempt)
-- ARGV[3]  the shard's key tag ("<prefix>{<shard>}:")
-- ARGV[4]  how long a send is kept after its final state, in ms (0: for ever)
-- ARGV[5..] pairs: send id, claim token
--
-- Returns one status per pair:
--   'go'         the caller owns this attempt (state is now 'sending')
--   'stale'      the token is not the send's current claim: someone else owns it
--   'cancelled'  a tombstone (of the send, or of its broadcast) was found: the send is cancelled and
--                released
--   'missing'    the send's record is gone (erased)
--   other        the send already ended in this state (delivered, failed, ...)
local inflight_key = KEYS[1]
-- KEYS[2] and KEYS[3] are the shard's tag .. 'outcomes' and 'stats': close_cancelled writes them.
local now = now_ms(ARGV[1])
local lease = tonumber(ARGV[2])
local tag = ARGV[3]
local history_ms = ARGV[4]
local HEAD = 4   -- ARGV[1..HEAD] above; then one group per send:
local GROUP = 2  -- send id, claim token
local out = {}
for i = HEAD + 1, #ARGV, GROUP do
  local id, claim = ARGV[i], ARGV[i + 1]
  local key = tag .. 'send:' .. id
  local fields = redis.call('HMGET', key, 'state', 'token', 'cancelled')
  local state, token, cancelled = fields[1], fields[2], fields[3]
  if state and not FINAL[state] and not cancelled then
    cancelled = broadcast_cancelled(tag, id)  -- its broadcast was cancelled as a whole
  end
  if not state then
    redis.call('ZREM', inflight_key, id)
    out[#out + 1] = 'missing'
  elseif FINAL[state] then
    out[#out + 1] = state
  elseif cancelled then
    close_cancelled(tag, id, cancelled, now, history_ms)
    out[#out + 1] = 'cancelled'
  elseif token ~= claim then
    out[#out + 1] = 'stale'
  else
    redis.call('HSET', key, 'state', 'sending')
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('ZADD', inflight_key, now + lease, id)
    out[#out + 1] = 'go'
  end
end
return out
