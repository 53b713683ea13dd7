-- note.lua: add entries to a send's history, unless the send is gone (erased).
--
-- KEYS[1]  the send hash
-- KEYS[2]  the send's log list
-- ARGV     entries (JSON)
--
-- Returns the length of the history, 0 when nothing was written.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return redis.call('RPUSH', KEYS[2], unpack(ARGV))
