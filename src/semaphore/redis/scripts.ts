/**
 * The semaphore's Lua scripts. Each runs atomically inside Redis and takes the time from the Redis
 * server (`TIME`), never from a client: pods with skewed clocks still agree on when a lease expires.
 *
 * Data (every script gets the keys in this order):
 * - KEYS[1], holders: member = permit id, score = lease expiry (server ms).
 * - KEYS[2], waiting: processes whose last acquisition was refused, member = process id, score =
 *   expiry of that entry (refreshed by each refused retry, so a crashed process drops out).
 * - KEYS[3], queue: the same processes in turn order, score = server ms at which the process joined
 *   the line. It joins at its first refusal (`NX`: retries keep its place) and goes to the back when
 *   a release gives it a turn, or when it is granted a permit and still refused some. Entries leave
 *   both sets together: when all the process's waiters were granted, when it says it no longer
 *   waits, or when the `waiting` entry expires.
 * - KEYS[4], epoch: hash `{since, until, run}` (server ms, and the `run_id` of the Redis process
 *   that wrote it), without a TTL, so it exists exactly as long as Redis keeps this semaphore's data.
 *   See "Data loss" below.
 * The keys themselves expire when their last member would, so an abandoned semaphore leaves nothing
 * but its epoch (one small hash per activity).
 * Never earlier: processes of one activity may run with different lease TTLs, so the holders key
 * expires at its latest lease's expiry (`expireHolders`), not after the caller's own TTL, and the
 * waiting keys' expiry is only ever extended.
 *
 * Data loss: leases are only as good as the Redis that holds them. A Redis that restarts without
 * persistence (or fails over to a replica that never had the data) forgets every lease while their
 * tasks keep running; one that restarts with persistence after being away longer than a TTL comes
 * back with their leases expired (by server time, which went on), and one with `appendfsync
 * everysec` may lose the last second of grants; a replica promoted with replication lag misses the
 * latest leases. In each case a process that asked first would find permits free and take them
 * before the holders re-register (their refresh re-adds a lease that is gone): more than the limit
 * in flight. So ACQUIRE, REFRESH and TRANSFER first run `windowOn`, which opens a window when the
 * epoch is missing (the store was lost, or the semaphore is new: the server cannot tell them apart,
 * and treating both alike is safe, a new semaphore waits once) or was written by another Redis
 * process (its `run` is not this server's `run_id`, which every restart and every promoted replica
 * changes; an epoch without `run`, from an older version, counts as another process's: one window,
 * once). The script records the epoch with a window from now to now + the caller's TTL and this
 * server's `run_id`, during which ACQUIRE grants nothing and says how long is left, while REFRESH
 * re-registers every running lease, even above the limit (holders draining a lowered limit when
 * the data went still run their tasks; counting them only holds new grants back), and TRANSFER hands
 * a held permit over while the count is under the limit (it does not grow). It also publishes `reregister` on the channel, on which every process
 * refreshes its leases at once. So every restart opens a window, even a quick one with persistence
 * whose leases all survived: the server cannot tell what it lost (the last second before a crash
 * with `everysec`), and a window only delays new grants by one TTL. Every live holder re-registers
 * within its own TTL of the loss in any case (at once when its connection dropped, which a restart
 * or failover does; else on that message, or at its next refresh if it missed it), so a window as
 * long as the longest TTL among the holders covers them: any of these scripts run during the window
 * extends it to `since` + the caller's TTL when that is later (only ever extended, and never once
 * it has ended, or a long-TTL holder's periodic refreshes would keep reopening it). RELEASE leaves
 * the epoch alone: it adds no lease, and the next script that does will notice the loss.
 * Not covered:
 * - a holder that reaches Redis only after the window: cut off from Redis for longer than that while
 *   its task runs (a partition longer than a TTL), and likewise every process cut off that long
 *   while Redis itself keeps running (no restart, so no window: a network partition, or a Redis
 *   Cluster refusing every slot while one master is down). Its lease expires and another process
 *   may take the permit; the holder then finds its lease lost, fails closed until that task ends,
 *   and logs it. Inherent to leases: Redis cannot tell a partitioned holder from a crashed one.
 * - when the data is lost without connections dropping (a FLUSHALL), a holder that misses the
 *   message and whose refresh interval (its TTL / 3) is longer than the window of the others.
 * - keys evicted by a `maxmemory` policy while the epoch stays (`volatile-*` policies evict only
 *   keys with a TTL, such as the holders): the semaphore's Redis must use `noeviction` (or have no
 *   `maxmemory`); connection.ts warns at connect when it can read the policy and it is not.
 * - mixed versions during a rollout: processes of a version without the epoch (or without `run`)
 *   ignore the window (or do not open one on a restart), and may take permits during it.
 *
 * Turns between processes: a release does not wake every waiting process (the first to answer would
 * win, always the same one when one pod answers faster). For each permit it frees it publishes
 * `turn <id>` addressed to the process at the head of the queue, and sends that process to the
 * back. Only an addressee runs its acquire script at once; the others ignore the message and keep
 * their bounded re-check timer. Sending the addressee to the back makes successive releases reach
 * successive processes before any of them answered, and makes a stale head entry (a crashed
 * process, or one whose waiters were served meanwhile) cost one turn, not every turn until it
 * expires: that permit stays free until some process asks without a turn (its re-check, at most
 * `recheckMs` later). An addressee takes no more permits than the turns it answers (ACQUIRE with
 * ARGV[6]), so that permits freed together (a holder's leases, granted together, go back together)
 * are spread over the processes in line instead of going to whichever answers first; if it finds
 * them already taken, it goes back to the head. A live addressee that can no longer use its turns
 * passes them on (RELEASE with ARGV[4]).
 *
 * ACQUIRE does not reserve permits for the processes in line: a process asking without a turn (a
 * re-check, the releasing process's loops) gets any free permit, as before. Reserving would keep the
 * order even against those, but a stale entry would then hold a permit idle until it expires, and
 * the reservation would need its own expiry and bookkeeping. So turns are first come first served
 * except when such an ask lands between a release and its addressee's acquisition (the releasing
 * process holds its own loops back `yieldMs` for that reason); the addressee then keeps its place at
 * the head for the next release. The limit is checked exactly as it always was.
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

/**
 * Defines `expireHolders()`: the holders key expires when its latest lease does (a lease's score is
 * its expiry in server ms, the clock key expiry uses too), so that a caller with a short TTL never
 * cuts the leases of processes with longer ones. Call it after adding or extending leases.
 */
const EXPIRE_HOLDERS = `
local function expireHolders()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if #last == 2 then redis.call('PEXPIREAT', KEYS[1], last[2]) end
end
`;

/** Published on the channel when a script finds the epoch missing: every holder refreshes at once. */
export const REREGISTER_MESSAGE = "reregister";

/**
 * Sets `windowEnd` (server ms): until then, no new permit is granted (see "Data loss" above). A
 * missing epoch, or one recorded by another Redis process (its `run` is not this server's `run_id`:
 * a restart, with or without persistence, or a failover; or an epoch from a version that did not
 * record it), starts a window of the caller's TTL, records this server's `run_id`, and is announced
 * on `channel` (a Lua expression); a window still open grows to `since` + the caller's TTL. Needs
 * `now` and `ttl`. One `INFO server` per call (a few microseconds; only the scripts that add leases
 * run it). A server whose `INFO` shows no `run_id` (some proxies and managed services) records ''
 * and is then only ever noticed by a missing epoch. (HSET with several fields needs Redis 4.0 or
 * later; a write after `INFO` or `TIME`, effects replication: Redis 5.0 or later.)
 */
const windowOn = (channel: string): string => `
local epoch = redis.call('HMGET', KEYS[4], 'since', 'until', 'run')
local since, windowEnd = tonumber(epoch[1]), tonumber(epoch[2])
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
if not since or not windowEnd or epoch[3] ~= run then
  since, windowEnd = now, now + ttl
  redis.call('HSET', KEYS[4], 'since', since, 'until', windowEnd, 'run', run)
  redis.call('PUBLISH', ${channel}, '${REREGISTER_MESSAGE}')
elseif now < windowEnd and since + ttl > windowEnd then
  windowEnd = since + ttl
  redis.call('HSET', KEYS[4], 'until', windowEnd)
end
`;

/** How a process announces on the channel that it waits: this prefix, then its id. */
export const WAITING_PREFIX = "waiting ";

/** How a release gives turns on the channel: this prefix, then the addressees' ids, space-separated. */
export const TURN_PREFIX = "turn ";

/** Drops the waiting processes whose entry expired, from both sets; needs `now`. */
const PRUNE_WAITING = `
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
`;

/**
 * Sets `others` to how many processes besides `self` (a Lua expression: the caller's id) are listed
 * waiting in KEYS[2]; run after PRUNE_WAITING.
 */
const countOthers = (self: string): string => `
local others = redis.call('ZCARD', KEYS[2])
if redis.call('ZSCORE', KEYS[2], ${self}) then others = others - 1 end
`;

/**
 * Defines `giveTurns(count, self, channel)`: publishes one `turn` message addressed to the `count`
 * processes at the head of the queue, skipping `self` and dropping entries whose `waiting` entry is
 * gone or expired, and sends each addressee to the back of the queue (see the file's comment). With
 * fewer processes in line than turns, they are named again in the same order (an id named n times
 * is n turns), so that every freed permit has an addressee. With nobody to address it publishes
 * `self`, the unaddressed wake-up that every process answers (as versions before turns did, and
 * still understand during a rollout). Needs `now`.
 */
const GIVE_TURNS = `
local function giveTurns(count, self, channel)
  local heads = {}
  local i = 0
  while #heads < count do
    local id = redis.call('ZRANGE', KEYS[3], i, i)[1]
    if not id then break end
    local expiry = redis.call('ZSCORE', KEYS[2], id)
    if id == self then
      i = i + 1
    elseif expiry and tonumber(expiry) > now then
      table.insert(heads, id)
      i = i + 1
    else
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZREM', KEYS[3], id)
    end
  end
  if #heads == 0 then
    redis.call('PUBLISH', channel, self)
    return
  end
  local turns = {}
  for k = 1, count do turns[k] = heads[(k - 1) % #heads + 1] end
  for _, id in ipairs(heads) do redis.call('ZADD', KEYS[3], 'XX', now, id) end
  redis.call('PUBLISH', channel, '${TURN_PREFIX}' .. table.concat(turns, ' '))
end
`;

/**
 * During a data-loss window (see the file's comment) it grants nothing, takes process ARGV[3] off
 * the waiting sets (no release can serve it before the window ends, so holders should not give
 * permits back for it) and returns {0, -1, ms left in the window}: the caller asks again then.
 * Otherwise it grants as many of the given ids (ARGV[7..], in order) as the limit leaves room for,
 * and when the caller answers turns (ARGV[6] > 0), no more than that many: another free permit is
 * the turn of another process, which may not have answered yet. When some are refused, process ARGV[3] is
 * listed waiting for ARGV[4] ms and queued for a turn, and if it was not listed yet, that is
 * announced on channel ARGV[5] (so holders start giving turns at once); when all are granted, it
 * leaves both sets. In the queue it goes to the back if it was granted some now; if it was granted
 * none while answering turns, the permits were taken before it came (by a re-check, or by the
 * releasing process's loops once they stopped holding back), and it goes back to the head, so that
 * a process slow to answer is not sent to the back each time; otherwise it keeps its place.
 * Returns {granted, msUntilEarliestExpiry or -1, 0}: the caller re-checks no later than that, so a
 * crashed holder's permit is picked up without a release message.
 */
export const ACQUIRE = `${PRELUDE}
${windowOn("ARGV[5]")}
if now < windowEnd then
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[3])
  return {0, -1, windowEnd - now}
end
${EXPIRE_HOLDERS}
${PRUNE_WAITING}
local turns = tonumber(ARGV[6])
local free = limit - redis.call('ZCARD', KEYS[1])
if turns > 0 and turns < free then free = turns end
local granted = 0
for i = 7, #ARGV do
  if granted >= free then break end
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
  granted = granted + 1
end
if granted > 0 then expireHolders() end
if granted < #ARGV - 6 then
  local waitingTtl = tonumber(ARGV[4])
  if redis.call('ZADD', KEYS[2], now + waitingTtl, ARGV[3]) == 1 then
    redis.call('PUBLISH', ARGV[5], '${WAITING_PREFIX}' .. ARGV[3])
  end
  if granted > 0 then
    redis.call('ZADD', KEYS[3], now, ARGV[3])
  elseif turns > 0 then
    local head = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    if #head == 0 then
      redis.call('ZADD', KEYS[3], now, ARGV[3])
    elseif head[1] ~= ARGV[3] then
      redis.call('ZADD', KEYS[3], tonumber(head[2]) - 1, ARGV[3])
    end
  else
    redis.call('ZADD', KEYS[3], 'NX', now, ARGV[3])
  end
  -- Only ever extended: another process may have listed itself for longer.
  for k = 2, 3 do
    if redis.call('PTTL', KEYS[k]) < waitingTtl then redis.call('PEXPIRE', KEYS[k], waitingTtl) end
  end
else
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[3])
end
local earliest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #earliest == 2 then wait = tonumber(earliest[2]) - now end
return {granted, wait, 0}
`;

/**
 * Extends the leases of process ARGV[3] with the given ids (ARGV[5..]; ARGV[4] is the channel). A
 * lease that is gone (it expired while this holder could not reach Redis, or Redis lost its data in
 * a restart) is taken again, so a task still running is counted again: during a data-loss window
 * (see the file's comment), which this call also opens or extends, always, even above the limit
 * (the tasks run whatever Redis counts, e.g. holders still draining a lowered limit when the data
 * went; counting them only holds new grants back); outside one, when the limit leaves room, and
 * otherwise it is reported lost. Returns {othersWaiting, over, n, reacquiredId x n, lostId...}:
 * `over` is 1 when the count is above the limit afterwards (the caller then hands permits over only
 * through Redis until a grant shows the count under it), and the caller gives back a re-taken lease
 * whose permit was released meanwhile.
 */
export const REFRESH = `${PRELUDE}
${windowOn("ARGV[4]")}
${EXPIRE_HOLDERS}
local open = now < windowEnd
local lost = {}
local reacquired = {}
for i = 5, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
  elseif open or redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    table.insert(reacquired, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
expireHolders()
${PRUNE_WAITING}
${countOthers("ARGV[3]")}
local over = 0
if redis.call('ZCARD', KEYS[1]) > limit then over = 1 end
local result = {others, over, #reacquired}
for _, id in ipairs(reacquired) do table.insert(result, id) end
for _, id in ipairs(lost) do table.insert(result, id) end
return result
`;

/**
 * Removes the given ids (ARGV[5..]) of process ARGV[2]. Unless ARGV[3] is '1' (it still has waiters),
 * the process leaves the waiting sets. Then it gives one turn (on channel ARGV[1]) for each id that
 * was still held, plus ARGV[4] more: the turns the process was given and cannot use, so that those
 * permits go on to the next processes in line. Returns {how many were held, how many other
 * processes are waiting}. It leaves the epoch alone: a release after a data loss removes nothing,
 * and the next script that adds a lease notices the loss.
 */
export const RELEASE = `${NOW}
${GIVE_TURNS}
local removed = 0
for i = 5, #ARGV do
  removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
end
${PRUNE_WAITING}
if ARGV[3] ~= '1' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
end
local turns = removed + tonumber(ARGV[4])
if turns > 0 then giveTurns(turns, ARGV[2], ARGV[1]) end
${countOthers("ARGV[2]")}
return {removed, others}
`;

/**
 * Hands a released permit to a waiter of the same process in one round trip: removes lease
 * ARGV[5] and, if the limit (ARGV[1]) still leaves room, adds lease ARGV[6] (returns 1). Otherwise
 * (a lowered limit) it only releases, giving the turn to the next process (ARGV[4] is the caller)
 * on channel ARGV[3] like RELEASE (returns 0). Allowed during a data-loss window, which it opens or
 * extends like REFRESH: the caller's running tasks stay as many, one finished and one starting.
 */
export const TRANSFER = `${PRELUDE}
${windowOn("ARGV[3]")}
${EXPIRE_HOLDERS}
${GIVE_TURNS}
redis.call('ZREM', KEYS[1], ARGV[5])
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[6])
  expireHolders()
  return 1
end
giveTurns(1, ARGV[4], ARGV[3])
return 0
`;
