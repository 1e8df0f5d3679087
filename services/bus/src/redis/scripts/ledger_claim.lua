-- Claims the delivery of one reply. The key holds 'L<token>' while a process delivers (with a
-- lease that expires, so a process dying mid-delivery does not block the retry forever) and
-- 'D<result>' once done.
-- KEYS[1] reply key   ARGV[1] lease ms   ARGV[2] token
-- Returns 'claimed', 'inflight', or the stored 'D<result>'.
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], 'L' .. ARGV[2], 'PX', ARGV[1])
  return 'claimed'
end
if string.sub(current, 1, 1) == 'D' then
  return current
end
return 'inflight'
