-- throttle.lua: take one of a journey's slots for a customer's send in a sliding period, atomically.
--
-- KEYS[1]  zset of the journey's sends to the customer: send id -> when it took its slot (UTC ms)
-- KEYS[2]  the customer's set of keys that name them (erased with the customer)
-- ARGV[1]  send id
-- ARGV[2]  now in UTC ms
-- ARGV[3]  the period in ms
-- ARGV[4]  how many sends the period allows
--
-- Returns {'ok'} (taken, or already held by this send: a retry takes nothing more) or
-- {'full', ms when the oldest slot of the period frees}. Two workers cannot both take the
-- last slot: the count and the add are one step.
local key, send_id = KEYS[1], ARGV[1]
local now, period, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
if redis.call('ZSCORE', key, send_id) then
  return {'ok'}
end
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {'full', tostring(tonumber(oldest[2]) + period)}
end
redis.call('ZADD', key, now, send_id)
redis.call('PEXPIRE', key, period)
redis.call('SADD', KEYS[2], key)
return {'ok'}
