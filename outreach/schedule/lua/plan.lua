-- plan.lua: add a planned send once, in compact form; planning the same send id again is a no-op.
--
-- KEYS[1]  due zset of the shard
-- KEYS[2]  the customer's plan hash: <event digest><step digest> -> intent ref,
--          <event digest> -> event (start, ingested, id), <event digest>d -> event data
-- KEYS[3]  the send's own hash (exists once the send left the compact form)
-- KEYS[4]  the 'done' hash of this generation that would hold the send's mark (archived sends)
-- KEYS[5]  the same of the generation before
-- ARGV[1]  send id
-- ARGV[2]  due UTC ms
-- ARGV[3]  field of the send (<event digest><step digest>)
-- ARGV[4]  field of its event (<event digest>)
-- ARGV[5]  intent ref (a field of the intents hash)
-- ARGV[6]  the event field's value
-- ARGV[7]  the event's data as JSON ('' for none)
-- ARGV[8]  the send's mark in the 'done' hash
--
-- Returns 1 when planned, 0 when the send id already existed.
return plan_send(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7],
  KEYS[4], KEYS[5], ARGV[8])
