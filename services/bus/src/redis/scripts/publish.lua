-- Dedupes and appends one envelope to the inbound stream, atomically: the dedupe key is set
-- only together with the XADD, so a failed append never turns the platform's retry into a
-- "duplicate" that is dropped.
-- KEYS[1] inbound stream   KEYS[2] dedupe key (ignored when ARGV[5] ~= '1')
-- ARGV[1] dedupe window ms ARGV[2] max stream length (0 = unbounded)
-- ARGV[3] envelope bytes   ARGV[4] traceparent   ARGV[5] '1' when the item has a dedupe key
-- Returns the new stream id, 'dup' or 'full'.
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  return 'dup'
end
local max_len = tonumber(ARGV[2])
if max_len > 0 and redis.call('XLEN', KEYS[1]) >= max_len then
  return 'full'
end
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[3], 'tp', ARGV[4])
if ARGV[5] == '1' then
  redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
end
return id
