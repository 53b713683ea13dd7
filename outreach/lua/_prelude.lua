-- _prelude.lua: put in front of every script by outreach/scripts.py.
--
-- now_ms(arg): the caller's clock in UTC ms, or the Redis server's TIME when the
-- caller passes '' (production passes ''; a simulated clock passes its time).
local function now_ms(arg)
  if arg == '' then
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return tonumber(arg)
end

