-- Moves one dead letter back into the inbound stream, once: the replay is deduplicated by the
-- dead letter's id, and the dead letter is deleted in the same step.
-- KEYS[1] dead-letter stream   KEYS[2] inbound stream   KEYS[3] replay dedupe key
-- ARGV[1] dead letter id   ARGV[2] dedupe window ms
-- Returns the new inbound id, 'missing' (no such dead letter) or 'dup' (already replayed).
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then
  return 'missing'
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[1])
  return 'dup'
end
local fields = found[1][2]
local payload, traceparent = '', ''
for i = 1, #fields, 2 do
  if fields[i] == 'e' then payload = fields[i + 1] end
  if fields[i] == 'tp' then traceparent = fields[i + 1] end
end
local id = redis.call('XADD', KEYS[2], '*', 'e', payload, 'tp', traceparent)
redis.call('SET', KEYS[3], id, 'PX', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return id
