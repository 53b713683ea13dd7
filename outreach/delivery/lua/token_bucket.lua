-- token_bucket.lua: take tokens from a channel's bucket, or say how long until they are there.
--
-- KEYS[1]  bucket hash    'tokens' (float, may be fractional), 'ts' (UTC ms of the last refill)
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  rate: tokens added per second
-- ARGV[3]  burst: the bucket's capacity
-- ARGV[4]  tokens wanted (never more than burst)
--
-- Returns {taken, wait_ms}: {1, 0} when the tokens were taken, {0, ms} when they
-- would be available in ms milliseconds. Nothing waits here: the caller defers.
-- A missing bucket is full. The key expires once the bucket would be full again,
-- because a full bucket needs no state.
local bucket_key = KEYS[1]
local now = now_ms(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])

local state = redis.call('HMGET', bucket_key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
-- Callers passing their own time may be a little behind one another: time never
-- runs backwards for a bucket, a late caller just gets no refill.
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
tokens = math.min(tokens, burst)

local taken = 0
local wait = 0
-- The epsilon absorbs float rounding, so waiting exactly wait_ms is always enough.
if tokens + 1e-9 >= wanted then
  tokens = math.max(0, tokens - wanted)
  taken = 1
else
  wait = math.ceil((wanted - tokens) * 1000 / rate)
end
redis.call('HSET', bucket_key, 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', bucket_key, math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {taken, wait}
