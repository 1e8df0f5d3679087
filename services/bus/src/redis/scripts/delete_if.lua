-- Deletes KEYS[1] if it holds ARGV[1]; returns 1 if it did. Releases a lease, or drops a
-- rejected token without dropping a newer one another replica stored meanwhile.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
