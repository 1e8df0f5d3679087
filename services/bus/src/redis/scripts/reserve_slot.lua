-- Reserves the next send slot of a schedule that allows ARGV[1] sends in any window of ARGV[2]
-- ms, on Redis's clock (one clock for every replica). Returns the wait in ms, or -1 when the
-- slot is more than ARGV[3] ms away (the queue is full; nothing reserved). The rule is
-- clawdbot_core::shared::next_slot: free until the limit, then one window after the limit-th
-- latest reservation, so that queued sends keep their order.
-- KEYS[1] sorted set of reserved times   ARGV[4] a unique member for this reservation
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local at = now
if count >= limit then
  local pivot = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  at = math.max(now, tonumber(pivot[2]) + window)
end
if at - now > max_wait then
  return -1
end
redis.call('ZADD', KEYS[1], at, ARGV[4])
redis.call('PEXPIRE', KEYS[1], at - now + window + 1000)
return at - now
