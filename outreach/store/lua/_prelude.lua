-- _prelude.lua: put in front of every script by outreach/store/scripts.py.
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

-- States in which a send is never attempted again.
local FINAL = {delivered = true, failed = true, suppressed = true, cancelled = true}

-- retire(tag, id, ms): a send reached its final state; its hash and history are kept for
-- ms milliseconds more (0: for ever), then Redis drops them.
local function retire(tag, id, ms)
  if tonumber(ms) > 0 then
    redis.call('PEXPIRE', tag .. 'send:' .. id, ms)
    redis.call('PEXPIRE', tag .. 'send:' .. id .. ':log', ms)
  end
end

-- count_broadcast(tag, id, what): a send of a broadcast (its event digest names the broadcast's hash
-- in the shard, outreach/broadcasts) counts one more 'what' there; other sends count nothing.
local function count_broadcast(tag, id, what)
  local event = string.sub(id, 2, 13)
  local key = tag .. 'broadcast:' .. event
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, what, 1)
  end
end

-- broadcast_cancelled(tag, id): the history entry a cancelled broadcast left for its sends (its
-- hash's 'cancelled' field), written to the send's history; false when the send belongs to no
-- cancelled broadcast.
local function broadcast_cancelled(tag, id)
  local event = string.sub(id, 2, 13)
  local entry = redis.call('HGET', tag .. 'broadcast:' .. event, 'cancelled')
  if entry then
    redis.call('RPUSH', tag .. 'send:' .. id .. ':log', entry)
    return 'broadcast_cancelled'
  end
  return false
end

-- close_cancelled(tag, id, reason, now, history_ms): a send with a tombstone reaches its
-- final state 'cancelled' and leaves every set of live work (due, in flight, open).
local function close_cancelled(tag, id, reason, now, history_ms)
  local key = tag .. 'send:' .. id
  redis.call('HSET', key, 'state', 'cancelled', 'cancelled', reason, 'finished_ms', now)
  redis.call('HDEL', key, 'token')
  redis.call('ZREM', tag .. 'due', id)
  redis.call('ZREM', tag .. 'inflight', id)
  redis.call('ZADD', tag .. 'outcomes', now, id)
  redis.call('SREM', tag .. 'open:' .. string.sub(id, 21), id)
  redis.call('HINCRBY', tag .. 'stats', 'sends:cancelled:' .. reason, 1)
  count_broadcast(tag, id, 'sent:cancelled')
  retire(tag, id, history_ms)
end

-- A send id is 's' .. event digest (12 hex) .. step digest (6 hex) .. '.' .. customer id
-- (outreach/store/keys.py); every key of a send lives under its customer's shard tag.
local function customer_of(id)
  return string.sub(id, 21)
end

-- from_broadcast(tag, id, due): a broadcast's send is planned more compactly still: one field of the
-- broadcast's hash in the shard, '>' .. customer -> its intent ref, and '|' .. its own data when it
-- has any (outreach/broadcasts/lua/plan.lua); the event's value is the hash's 'm:' .. ref field
-- (one per intent: zone and country), the broadcast's data its 'data' field. It becomes a hash of
-- its own as materialize() makes one; false when there is no such field, or when the customer
-- was erased since (the field goes either way).
local function from_broadcast(tag, id, due)
  local customer = customer_of(id)
  local event = string.sub(id, 2, 13)
  local bkey = tag .. 'broadcast:' .. event
  local held = redis.call('HGET', bkey, '>' .. customer)
  if not held then
    return false
  end
  redis.call('HDEL', bkey, '>' .. customer)
  if redis.call('EXISTS', tag .. 'customer:' .. customer) == 0 then
    return false
  end
  local ref, data = string.sub(held, 1, 12), string.sub(held, 14)
  local shared = redis.call('HMGET', bkey, 'm:' .. ref, 'data')
  if data == '' then
    data = shared[2] or '{}'
  end
  local ms = string.format('%d', tonumber(due))
  redis.call('HSET', tag .. 'send:' .. id, 'id', id, 'customer_id', customer, 'intent', ref,
    'event', shared[1] or '', 'data', data, 'state', 'scheduled',
    'due_ms', ms, 'resolved_ms', ms, 'attempts', '0')
  redis.call('SADD', tag .. 'sends:' .. customer, id)
  redis.call('SADD', tag .. 'open:' .. customer, id)
  return true
end

-- materialize(tag, id, due): a send planned in compact form (a field of the
-- customer's 'plan:' hash; its event's start, ingestion time, id and data in two
-- fields shared by the event's sends) becomes a hash of its own in state
-- 'scheduled', the first time anything happens to it. Returns false when the
-- customer has no such planned send (erased, or never planned).
local function materialize(tag, id, due)
  local customer = customer_of(id)
  local event = string.sub(id, 2, 13)
  local field = string.sub(id, 2, 19)
  local planned = tag .. 'plan:' .. customer
  local intent = redis.call('HGET', planned, field)
  if not intent then
    return from_broadcast(tag, id, due)
  end
  local shared = redis.call('HMGET', planned, event, event .. 'd')
  local ms = string.format('%d', tonumber(due))
  redis.call('HSET', tag .. 'send:' .. id, 'id', id, 'customer_id', customer, 'intent', intent,
    'event', shared[1] or '', 'data', shared[2] or '{}', 'state', 'scheduled',
    'due_ms', ms, 'resolved_ms', ms, 'attempts', '0')
  redis.call('HDEL', planned, field)
  -- The event's shared fields leave with its last planned send.
  local last = true
  for _, name in ipairs(redis.call('HKEYS', planned)) do
    if #name == 18 and string.sub(name, 1, 12) == event then
      last = false
      break
    end
  end
  if last then
    redis.call('HDEL', planned, event, event .. 'd')
  end
  redis.call('SADD', tag .. 'sends:' .. customer, id)
  redis.call('SADD', tag .. 'open:' .. customer, id)
  return true
end


-- plan_send(due_key, plan_key, send_key, id, due_ms, send_field, event_field, intent, event_value,
-- event_data, done_key, done_before_key, done_field): add a planned send once, in compact form
-- (see plan.lua); returns 1 when planned, 0 when the send id already existed (planned, under way,
-- or finished and archived: marked in this generation's 'done' hash or the one before).
local function plan_send(due_key, plan_key, send_key, id, due_ms, send_field, event_field, intent,
                         event_value, event_data, done_key, done_before_key, done_field)
  if redis.call('EXISTS', send_key) == 1 or redis.call('HEXISTS', plan_key, send_field) == 1
      or redis.call('HEXISTS', done_key, done_field) == 1
      or redis.call('HEXISTS', done_before_key, done_field) == 1 then
    return 0
  end
  redis.call('HSET', plan_key, send_field, intent)
  redis.call('HSETNX', plan_key, event_field, event_value)
  if event_data ~= '' then
    redis.call('HSETNX', plan_key, event_field .. 'd', event_data)
  end
  redis.call('ZADD', due_key, tonumber(due_ms), id)
  return 1
end
