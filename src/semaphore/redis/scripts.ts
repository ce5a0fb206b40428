/**
 * The semaphore's Lua scripts. Each runs atomically inside Redis and takes the time from the Redis
 * server (`TIME`), never from a client: pods with skewed clocks still agree on when a lease expires.
 *
 * Data: one sorted set per semaphore, member = permit id, score = lease expiry (server ms); and one
 * of waiting processes, member = process id, score = expiry of that entry. The keys themselves
 * expire when their last member would, so an abandoned semaphore leaves nothing behind.
 */

/** The Redis server's time in ms, as `now`. */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** Shared prelude: server time in ms, and the expired leases dropped. */
const PRELUDE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
`;

/** How a process announces on the channel that it waits: this prefix, then its id. */
export const WAITING_PREFIX = "waiting ";

/**
 * Grants as many of the given ids (ARGV[6..], in order) as the limit leaves room for. When some are
 * refused, process ARGV[3] is listed waiting in KEYS[2] for ARGV[4] ms, and if it was not listed
 * yet, that is announced on channel ARGV[5] (so holders start giving turns at once); when all are
 * granted, it is no longer listed. Returns {granted, msUntilEarliestExpiry or -1}: the caller
 * re-checks no later than that, so a crashed holder's permit is picked up without a release message.
 */
export const ACQUIRE = `${PRELUDE}
local free = limit - redis.call('ZCARD', KEYS[1])
local granted = 0
for i = 6, #ARGV do
  if granted >= free then break end
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
  granted = granted + 1
end
if granted > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
if granted < #ARGV - 5 then
  local waitingTtl = tonumber(ARGV[4])
  if redis.call('ZADD', KEYS[2], now + waitingTtl, ARGV[3]) == 1 then
    redis.call('PUBLISH', ARGV[5], '${WAITING_PREFIX}' .. ARGV[3])
  end
  redis.call('PEXPIRE', KEYS[2], waitingTtl)
else
  redis.call('ZREM', KEYS[2], ARGV[3])
end
local earliest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #earliest == 2 then wait = tonumber(earliest[2]) - now end
return {granted, wait}
`;

/**
 * Sets `others` to how many processes besides `self` (a Lua expression: the caller's id) are listed
 * waiting in KEYS[2], dropping expired entries; needs `now`.
 */
const othersWaiting = (self: string): string => `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local others = redis.call('ZCARD', KEYS[2])
if redis.call('ZSCORE', KEYS[2], ${self}) then others = others - 1 end
`;

/**
 * Extends the leases of process ARGV[3] with the given ids (ARGV[4..]). A lease that is gone (it
 * expired while this holder could not reach Redis, or Redis lost its data in a restart) is taken
 * again when the limit leaves room, so a task still running is counted again; otherwise it is
 * reported lost. Returns {othersWaiting, n, reacquiredId x n, lostId...}: the caller gives back a
 * re-taken lease whose permit was released meanwhile.
 */
export const REFRESH = `${PRELUDE}
local lost = {}
local reacquired = {}
for i = 4, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
  elseif redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    table.insert(reacquired, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
if redis.call('ZCARD', KEYS[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
${othersWaiting("ARGV[3]")}
local result = {others, #reacquired}
for _, id in ipairs(reacquired) do table.insert(result, id) end
for _, id in ipairs(lost) do table.insert(result, id) end
return result
`;

/**
 * Removes the given ids (ARGV[3..]) and, when any was still held, publishes this process's id
 * (ARGV[2]) on channel ARGV[1], so that waiters in every other process try again at once instead
 * of polling. Returns {how many were held, how many other processes are waiting (KEYS[2])}.
 */
export const RELEASE = `
local removed = 0
for i = 3, #ARGV do
  removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
end
if removed > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
${NOW}
${othersWaiting("ARGV[2]")}
return {removed, others}
`;

/**
 * Hands a released permit to a waiter of the same process in one round trip: removes lease
 * ARGV[5] and, if the limit (ARGV[1]) still leaves room, adds lease ARGV[6] (returns 1). Otherwise
 * (a lowered limit) it only releases, publishing like RELEASE (returns 0).
 */
export const TRANSFER = `${PRELUDE}
redis.call('ZREM', KEYS[1], ARGV[5])
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 0
`;
