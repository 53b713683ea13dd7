-- note.lua: add entries to a send's history, unless the send is gone (erased).
--
-- KEYS[1]  the send hash
-- KEYS[2]  the send's log list
-- ARGV     entries (JSON)
--
-- Returns the length of the history, 0 when nothing was written.
local send_key = KEYS[1]
local log_key = KEYS[2]
local FIRST_ENTRY = 1
if redis.call('EXISTS', send_key) == 0 then
  return 0
end
return redis.call('RPUSH', log_key, unpack(ARGV, FIRST_ENTRY))
