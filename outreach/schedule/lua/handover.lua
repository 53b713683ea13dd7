-- handover.lua: the last gate before sends of one shard go to their providers.
--
-- KEYS[1]  inflight zset of the shard  send id -> lease deadline UTC ms
-- KEYS[2]  outcomes zset, KEYS[3] stats hash (a tombstone found here ends the send)
-- ARGV[1]  now in ms, or '' to read the Redis server's TIME
-- ARGV[2]  the shard's key tag ("<prefix>{<shard>}:")
-- ARGV[3]  how long a send is kept after its final state, in ms (0: for ever)
-- ARGV[4..] groups of five per send:
--          send id, claim token, category, channel,
--          consent: '-' when the category needs none, else '1' or '0': whether it is
--          allowed when the customer never said
--
-- The batch was decided a while ago; this re-reads, per send and at once, all
-- that can stop it since: the tombstone of a cancellation, the claim token, the
-- customer's profile (erased, consent for the category, consent for the channel)
-- and the do-not-contact list. A send that passes is marked as being handed
-- over ('handing' = its token, 'handed_ms' = now): a cancellation from now on
-- answers 'too late' (cancel.lua), and one before this instant stopped it here.
-- Transactional sends need no consent; do-not-contact stops every category.
--
-- Returns {now, status, ...}, one status per send:
--   'go'               marked as handed over: the caller calls the provider now
--   'cancelled'        a tombstone (of the send, or of its broadcast) was found: the send is now
--                      cancelled
--   'stale'            the token is not the send's current claim
--   'missing'          the send's record is gone (erased)
--   a final state      the send already ended (delivered, failed, ...)
--   'customer_gone'    the customer's profile is gone (erased or deleted)
--   'do_not_contact'   the customer is on the do-not-contact list
--   'no_consent'       consent for the category was withdrawn (or never given)
--   'channel_opt_out'  the customer opted out of this channel
-- KEYS[1..3] are the tag's 'inflight', 'outcomes' and 'stats': close_cancelled writes them.
local now = now_ms(ARGV[1])
local tag = ARGV[2]
local history_ms = ARGV[3]
local HEAD = 3   -- ARGV[1..HEAD] above; then one group per send:
local GROUP = 5  -- send id, claim token, category, channel, consent
local out = {now}
for i = HEAD + 1, #ARGV, GROUP do
  local id, claim, category, channel, consent = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = tag .. 'send:' .. id
  local fields = redis.call('HMGET', key, 'state', 'token', 'cancelled')
  local state, token, cancelled = fields[1], fields[2], fields[3]
  if state and not FINAL[state] and not cancelled then
    cancelled = broadcast_cancelled(tag, id)  -- its broadcast was cancelled as a whole
  end
  local status = 'go'
  if not state then
    status = 'missing'
  elseif FINAL[state] then
    status = state
  elseif cancelled then
    close_cancelled(tag, id, cancelled, now, history_ms)
    status = 'cancelled'
  elseif token ~= claim then
    status = 'stale'
  else
    local customer = customer_of(id)
    local raw = redis.call('GET', tag .. 'customer:' .. customer)
    if not raw then
      status = 'customer_gone'
    elseif redis.call('SISMEMBER', tag .. 'dnc', customer) == 1 then
      status = 'do_not_contact'
    else
      local profile = cjson.decode(raw)
      if consent ~= '-' then
        local said = nil
        if type(profile.consent) == 'table' then
          said = profile.consent[category]
        end
        if said == false or (said == nil and consent ~= '1') then
          status = 'no_consent'
        end
      end
      if status == 'go' and type(profile.channel_consent) == 'table'
          and profile.channel_consent[channel] == false then
        status = 'channel_opt_out'
      end
    end
  end
  if status == 'go' then
    redis.call('HSET', key, 'handing', claim, 'handed_ms', now)
  end
  out[#out + 1] = status
end
return out
