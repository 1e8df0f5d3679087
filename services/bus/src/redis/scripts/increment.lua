-- Adds ARGV[2] to KEYS[1] and returns the new value; the counter expires ARGV[1] ms after its
-- first increment (one script, so a crash between INCRBY and PEXPIRE cannot leak the key).
local value = redis.call('INCRBY', KEYS[1], ARGV[2])
if value == tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return value
