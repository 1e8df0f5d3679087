-- Dedupes and appends one envelope to the inbound stream, atomically: the dedupe key is set
-- only together with the XADD, so a failed append never turns the platform's retry into a
-- "duplicate" that is dropped. An ordered item gets the next turn of its conversation in the
-- same step, so turns have no gaps and follow the stream's order.
-- KEYS[1] inbound stream   KEYS[2] dedupe key (ignored when ARGV[5] ~= '1')
-- KEYS[3] turn record (ignored when ARGV[6] == '')
-- ARGV[1] dedupe window ms ARGV[2] max stream length (0 = unbounded)
-- ARGV[3] envelope bytes   ARGV[4] traceparent   ARGV[5] '1' when the item has a dedupe key
-- ARGV[6] order key ('' = unordered)   ARGV[7] turn record ttl ms
-- Returns the new stream id, 'dup' or 'full'.
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  return 'dup'
end
local max_len = tonumber(ARGV[2])
if max_len > 0 and redis.call('XLEN', KEYS[1]) >= max_len then
  return 'full'
end
local id
if ARGV[6] ~= '' then
  local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
  id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[3], 'tp', ARGV[4], 'tk', ARGV[6], 'ts', seq)
else
  id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[3], 'tp', ARGV[4])
end
if ARGV[5] == '1' then
  redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
end
return id
