-- Records that a group finished a turn of a conversation; progress never goes back, and never
-- past the turns handed out (a record that expired and started again is not pushed ahead).
-- KEYS[1] turn record   ARGV[1] 'done:' .. group   ARGV[2] turn   ARGV[3] ttl ms
-- Returns 1 if the progress moved.
local turn = tonumber(ARGV[2])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local done = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if turn > seq or turn <= done then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], turn)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
