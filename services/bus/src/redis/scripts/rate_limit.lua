-- Counts one use in the current fixed window and returns the count so far; the window starts
-- with its first use. One script, so racing workers never read-modify-write past the limit.
-- KEYS[1] counter key   ARGV[1] window ms
local used = redis.call('INCR', KEYS[1])
if used == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return used
