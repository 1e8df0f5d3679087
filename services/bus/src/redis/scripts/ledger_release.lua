-- Gives back a delivery lease, only if this token still holds it.
-- KEYS[1] reply key   ARGV[1] token
if redis.call('GET', KEYS[1]) == 'L' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
