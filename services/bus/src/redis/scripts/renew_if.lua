-- Extends KEYS[1] to ARGV[2] ms if it holds ARGV[1]; returns 1 if it did. A lease is renewed
-- only by its holder: one that lost it (expired, taken over) learns so from the 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
