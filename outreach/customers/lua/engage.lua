-- engage.lua: count one answer or click of a customer at a local hour, if the customer still is.
--
-- KEYS[1]  the customer's engagement hash (<kind>:<hour> -> count)
-- KEYS[2]  the customer's set of keys that name them (erased with the customer)
-- KEYS[3]  the customer's profile (an erased customer has none: nothing is kept)
-- ARGV[1]  the field, '<kind>:<HH>'
--
-- Returns 1 when counted, 0 when the customer is gone: a click racing the customer's erasure
-- leaves nothing behind, whichever comes first.
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], KEYS[1])
return 1
