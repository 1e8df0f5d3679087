-- Adds one to KEYS[1] and returns the new value; the counter expires ARGV[1] ms after its
-- first increment (one script, so a crash between INCR and PEXPIRE cannot leak the key).
local value = redis.call('INCR', KEYS[1])
if value == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return value
