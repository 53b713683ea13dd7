-- click.lua: keep a click (or an open) with its send while the send is in Redis.
--
-- KEYS[1]  the send hash    KEYS[2] the send's history list    KEYS[3] the shard's stats hash
-- ARGV[1]  'click' or 'open'   ARGV[2] now in UTC ms   ARGV[3] the history entry (JSON)
-- ARGV[4]  how many of that kind a send's history keeps (later ones are only counted)
--
-- On the send hash: 'clicked_ms' (the first click, never moved), 'clicks' (how many), and for
-- opens 'opened_ms' and 'opens'. In the stats: 'clicks:<kind>' every one, 'clicked:<kind>' the
-- sends' first ones.
--
-- Returns 'first' (the send's first of that kind), 'again', or 'gone' when the send has no hash
-- (archived: the click goes to the archive; or erased, or never sent).
local send_key, log_key, stats_key = KEYS[1], KEYS[2], KEYS[3]
local kind, now, entry, keep = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('EXISTS', send_key) == 0 then
  return 'gone'
end
local first_field, count_field = 'clicked_ms', 'clicks'
if kind == 'open' then
  first_field, count_field = 'opened_ms', 'opens'
end
local count = redis.call('HINCRBY', send_key, count_field, 1)
-- Only an entry changes the history's length: the mover sees by it that a click came after it read.
if count <= keep then
  redis.call('RPUSH', log_key, entry)
end
redis.call('HINCRBY', stats_key, 'clicks:' .. kind, 1)
if redis.call('HSETNX', send_key, first_field, now) == 1 then
  redis.call('HINCRBY', stats_key, 'clicked:' .. kind, 1)
  return 'first'
end
return 'again'
