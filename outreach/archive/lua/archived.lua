-- archived.lua: finished sends of one shard were written to the archive: Redis lets them go,
-- unless something happened to one since it was read.
--
-- KEYS[1]  outcomes zset of the shard (send id -> UTC ms of its final state)
-- ARGV[1]  the shard's key tag ("<prefix>{<shard>}:")
-- ARGV[2]  how long this generation's 'done' hashes may be kept from now, in ms (a mark is read
--          in its generation and the one after; the mover unlinks the hash then, and this expiry
--          is a generation later still)
-- ARGV[3..] per send, seven each: send id, its history's length when read (-1: not read), its
--          receipts' count when read, its answer's change count when read ('' for none), its
--          customer's tombstone, the 'done' hash of this generation for it, its mark
--
-- Returns one word per send:
--   'archived'  its hash, history, receipts, answer and markers are gone; its mark is in 'done'
--   'changed'   a history entry, a receipt or an answer came after it was read: kept (archived
--               again later)
--   'erased'    its customer was erased: the archive must drop its rows. It stays in (or is put
--               back in) the outcomes, so that a drop that fails is done again by the next mover;
--               the mover takes it out once the rows are gone
--   'gone'      no record (archived by another process, or expired): nothing to do
--   'live'      not in a final state any more (replayed): out of the outcomes, kept
local outcomes_key = KEYS[1]
local tag = ARGV[1]
local keep = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 7 do
  local id, length, receipts, changes = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
  local tombstone, done_key, mark = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local customer = customer_of(id)
  local send_key = tag .. 'send:' .. id
  local log_key = send_key .. ':log'
  local receipts_key = tag .. 'receipts:' .. id
  local answer_key = tag .. 'answer:' .. id
  if redis.call('SISMEMBER', tag .. 'erased', tombstone) == 1 then
    redis.call('ZADD', outcomes_key, 0, id)
    out[#out + 1] = 'erased'
  else
    local state = redis.call('HGET', send_key, 'state')
    if not state then
      redis.call('ZREM', outcomes_key, id)
      out[#out + 1] = 'gone'
    elseif not FINAL[state] then
      redis.call('ZREM', outcomes_key, id)
      out[#out + 1] = 'live'
    elseif redis.call('LLEN', log_key) ~= length or redis.call('HLEN', receipts_key) ~= receipts
        or (redis.call('HGET', answer_key, 'changes') or '') ~= changes then
      out[#out + 1] = 'changed'
    else
      redis.call('DEL', send_key, log_key, receipts_key, answer_key, tag .. 'capslot:' .. id,
        tag .. 'trace:' .. id, tag .. 'send:' .. id .. ':items')
      redis.call('SREM', tag .. 'customer:' .. customer .. ':keys', tag .. 'send:' .. id .. ':items')
      redis.call('ZREM', outcomes_key, id)
      redis.call('ZREM', tag .. 'answers', id)
      redis.call('SREM', tag .. 'sends:' .. customer, id)
      redis.call('SREM', tag .. 'open:' .. customer, id)
      redis.call('SREM', tag .. 'customer:' .. customer .. ':answers', id)
      redis.call('HSET', done_key, mark, string.sub(state, 1, 1))
      if redis.call('PTTL', done_key) < keep then
        redis.call('PEXPIRE', done_key, string.format('%d', keep))
      end
      out[#out + 1] = 'archived'
    end
  end
end
return out
