-- inbox.lua: take events of one shard that were queued for ingestion but not applied in time.
--
-- KEYS[1]  inbox zset    event id -> UTC ms by which it should have been applied
-- KEYS[2]  inbox hash    event id -> the event as JSON (what the ingest actor receives)
-- KEYS[3]  tries hash    event id -> times it was queued again
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  most events to take (bounded: a long script blocks Redis)
-- ARGV[3]  lease length in ms
-- ARGV[4]  most times an event is queued again before it is given up (dead-lettered)
--
-- An event is overdue when its worker died holding it (killed, out of memory)
-- or its message was lost. Each overdue event is returned to be queued again,
-- with a deadline that doubles each time (lease x 2^times, at most an hour), so
-- an event that is only slow (a busy worker holds it) is not queued again and
-- again; ingestion is idempotent, so it is applied once all the same.
-- Returns {{event json, ...}, {event json given up, ...}}.
local inbox_key = KEYS[1]
local events_key = KEYS[2]
local tries_key = KEYS[3]
local now = now_ms(ARGV[1])
local limit = ARGV[2]
local lease = ARGV[3]
local max_tries = ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', inbox_key, '-inf', now, 'LIMIT', 0, tonumber(limit))
local again, given_up = {}, {}
for _, id in ipairs(ids) do
  local event = redis.call('HGET', events_key, id)
  local tries = redis.call('HINCRBY', tries_key, id, 1)
  if not event or tries > tonumber(max_tries) then
    redis.call('ZREM', inbox_key, id)
    redis.call('HDEL', events_key, id)
    redis.call('HDEL', tries_key, id)
    if event then
      given_up[#given_up + 1] = event
    end
  else
    redis.call('ZADD', inbox_key, now + math.min(tonumber(lease) * 2 ^ tries, 3600000), id)
    again[#again + 1] = event
  end
end
return {again, given_up}
