-- archived.lua: finished sends of one shard were written to the archive: Redis lets them go,
-- unless something happened to one since it was read.
--
-- KEYS[1]  outcomes zset of the shard (send id -> UTC ms of its final state)
-- ARGV[1]  the shard's key tag ("<prefix>{<shard>}:")
-- ARGV[2]  how long a 'done' hash is kept after its day ends, in ms (the events' window)
-- ARGV[3]  now in UTC ms, or '' to read the Redis server's TIME
-- ARGV[4..] per send, six each: send id, its history's length when read, its answer's
--          updated_ms when read ('' for none), its customer's tombstone, its event's UTC day,
--          its mark in that day's 'done' hash
--
-- Returns one word per send:
--   'archived'  its hash, history, receipts, answer and markers are gone; its mark is in 'done'
--   'changed'   a history entry or an answer came after it was read: kept (archived again later)
--   'erased'    its customer was erased meanwhile: the archive must drop what it just wrote
--   'gone'      no record (archived by another process, or expired): nothing to do
--   'live'      not in a final state any more (replayed): out of the outcomes, kept
local outcomes_key = KEYS[1]
local tag = ARGV[1]
local window = tonumber(ARGV[2])
local now = now_ms(ARGV[3])
local DAY_MS = 86400000
local out = {}
for i = 4, #ARGV, 6 do
  local id, length, answered, tombstone = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local day, mark = tonumber(ARGV[i + 4]), ARGV[i + 5]
  local customer = customer_of(id)
  local send_key = tag .. 'send:' .. id
  local log_key = send_key .. ':log'
  local answer_key = tag .. 'answer:' .. id
  if redis.call('SISMEMBER', tag .. 'erased', tombstone) == 1 then
    redis.call('ZREM', outcomes_key, id)
    out[#out + 1] = 'erased'
  else
    local state = redis.call('HGET', send_key, 'state')
    if not state then
      redis.call('ZREM', outcomes_key, id)
      out[#out + 1] = 'gone'
    elseif not FINAL[state] then
      redis.call('ZREM', outcomes_key, id)
      out[#out + 1] = 'live'
    elseif redis.call('LLEN', log_key) ~= length
        or (redis.call('HGET', answer_key, 'updated_ms') or '') ~= answered then
      out[#out + 1] = 'changed'
    else
      redis.call('DEL', send_key, log_key, tag .. 'receipts:' .. id, answer_key,
        tag .. 'capslot:' .. id, tag .. 'trace:' .. id)
      redis.call('ZREM', outcomes_key, id)
      redis.call('ZREM', tag .. 'answers', id)
      redis.call('SREM', tag .. 'sends:' .. customer, id)
      redis.call('SREM', tag .. 'open:' .. customer, id)
      redis.call('SREM', tag .. 'customer:' .. customer .. ':answers', id)
      local done_key = tag .. 'done:' .. string.format('%d', day)
      redis.call('HSET', done_key, mark, string.sub(state, 1, 1))
      -- Relative to now (the caller's clock may be simulated); at least a day.
      local ttl = math.max((day + 1) * DAY_MS + window - now, DAY_MS)
      if redis.call('PTTL', done_key) < ttl then
        redis.call('PEXPIRE', done_key, string.format('%d', ttl))
      end
      out[#out + 1] = 'archived'
    end
  end
end
return out
