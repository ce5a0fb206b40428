/**
 * The semaphore's Lua scripts. Each runs atomically inside Redis and takes the time from the Redis
 * server (`TIME`), never from a client: pods with skewed clocks still agree on when a lease expires.
 *
 * Data: one sorted set per semaphore, member = permit id, score = lease expiry (server ms). The key
 * itself expires when its last lease would, so an abandoned semaphore leaves nothing behind.
 */

/** Shared prelude: server time in ms, and the expired leases dropped. */
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
`;

/**
 * Grants as many of the given ids (ARGV[3..], in order) as the limit leaves room for.
 * Returns {granted, msUntilEarliestExpiry or -1}: the caller re-checks no later than that, so a
 * crashed holder's permit is picked up without a release message.
 */
export const ACQUIRE = `${PRELUDE}
local free = limit - redis.call('ZCARD', KEYS[1])
local granted = 0
for i = 3, #ARGV do
  if granted >= free then break end
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
  granted = granted + 1
end
if granted > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
local earliest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #earliest == 2 then wait = tonumber(earliest[2]) - now end
return {granted, wait}
`;

/**
 * Extends the leases of the given ids (ARGV[3..]). A lease that is gone (it expired while this
 * holder could not reach Redis, or Redis lost its data in a restart) is taken again when the limit
 * leaves room, so a task still running is counted again; otherwise it is reported lost.
 * Returns {reacquired, lostId...}.
 */
export const REFRESH = `${PRELUDE}
local lost = {}
local reacquired = 0
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
  elseif redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    reacquired = reacquired + 1
  else
    table.insert(lost, ARGV[i])
  end
end
if redis.call('ZCARD', KEYS[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
table.insert(lost, 1, reacquired)
return lost
`;

/**
 * Removes the given ids (ARGV[2..]) and, when any was still held, publishes on channel ARGV[1] so
 * that waiters in every process try again at once instead of polling. Returns how many were held.
 */
export const RELEASE = `
local removed = 0
for i = 2, #ARGV do
  removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
end
if removed > 0 then redis.call('PUBLISH', ARGV[1], removed) end
return removed
`;
