-- Records a reply's final result and appends its outbound record, atomically, so that history
-- gets exactly one record per delivered reply.
-- KEYS[1] reply key   KEYS[2] outbound stream
-- ARGV[1] token   ARGV[2] result   ARGV[3] ttl ms   ARGV[4] record bytes   ARGV[5] traceparent
-- Returns 1, or 0 when another process had already completed it.
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, 1) == 'D' then
  return 0
end
redis.call('SET', KEYS[1], 'D' .. ARGV[2], 'PX', ARGV[3])
redis.call('XADD', KEYS[2], '*', 'e', ARGV[4], 'tp', ARGV[5])
return 1
