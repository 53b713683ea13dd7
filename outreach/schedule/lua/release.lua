-- release.lua: take back the hand-over mark of a send that did not go to its provider after all.
--
-- KEYS[1]  the send hash
-- ARGV[1]  the claim token of the attempt whose mark it is
--
-- The gate marks a send before the caller learns, in the same round trip, that its
-- address was suppressed meanwhile; the caller releases the mark at once, so a
-- cancellation is answered 'cancelled' again, with no hand-over time. Another
-- attempt's mark is left alone.
-- Returns 1 when the mark was taken back.
local send_key = KEYS[1]
local claim = ARGV[1]
if redis.call('HGET', send_key, 'handing') == claim then
  redis.call('HSET', send_key, 'handing', '')
  redis.call('HDEL', send_key, 'handed_ms')
  return 1
end
return 0
