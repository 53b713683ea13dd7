-- receipt.lua: record a provider's receipt for a send, once, and never backwards.
--
-- KEYS[1]  the send hash
-- KEYS[2]  the send's log list
-- KEYS[3]  the send's receipts hash: status -> UTC ms, and 'top' -> the highest rank seen
-- KEYS[4]  stats hash: receipts counted by channel and status (metrics)
-- ARGV[1]  status (accepted, delivered, read, bounced, failed, complained)
-- ARGV[2]  its rank (progress: accepted 0 < delivered 1 < read 2; bounced, failed 3; complained 4)
-- ARGV[3]  '1' when the status is progress (it never goes backwards), '0' otherwise
-- ARGV[4]  now in UTC ms
-- ARGV[5]  log entry (JSON)
-- ARGV[6]  channel
-- ARGV[7]  the field that says it was seen (the status; a permanent failure after a passing one
--          is another field, so it still counts)
--
-- Returns 'new', 'repeat' (this status was recorded before), 'stale' (progress that
-- comes after a later status: delivered after read or after a bounce) or 'gone' (no send).
-- Only 'new' is written to the history and counted; the send's 'receipt' field holds the
-- highest status so far.
local send_key, log_key, receipts_key, stats_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local status, rank, progress = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
if redis.call('EXISTS', send_key) == 0 then
  return 'gone'
end
if redis.call('HSETNX', receipts_key, ARGV[7], ARGV[4]) == 0 then
  return 'repeat'
end
local ttl = redis.call('PTTL', send_key)
if ttl > 0 then
  redis.call('PEXPIRE', receipts_key, ttl)
end
local top = tonumber(redis.call('HGET', receipts_key, 'top') or '-1')
if progress and top >= rank then
  return 'stale'
end
redis.call('RPUSH', log_key, ARGV[5])
redis.call('HINCRBY', stats_key, 'receipts:' .. ARGV[6] .. ':' .. status, 1)
if rank > top then
  redis.call('HSET', receipts_key, 'top', rank)
  redis.call('HSET', send_key, 'receipt', status)
end
return 'new'
