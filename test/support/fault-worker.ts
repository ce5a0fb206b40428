/**
 * One worker process of the semaphore fault test (test/integration/semaphore-faults.test.ts): a
 * stand-in for a poller pod. It runs `loops` loops of think / acquire / hold / release against the
 * real RedisSemaphore, and tells the witness (fault-protocol.ts) what each loop does, so that the
 * test counts what is in flight without trusting the semaphore's own bookkeeping.
 *
 * A hold goes on for its whole duration whatever happens to its lease, as a poller's task keeps
 * running when Redis is away or its lease was lost: that is the case the limit must survive.
 *
 * Run by the test with the project's Node (24 strips the types), settings in SFN_FAULT_WORKER.
 */
import { once } from "node:events";
import net from "node:net";
import { configureLogging } from "../../src/observability/logger.ts";
import { RedisConnection } from "../../src/semaphore/redis/connection.ts";
import { RedisSemaphore } from "../../src/semaphore/redis/redis-semaphore.ts";
import {
  type FaultWorkerConfig,
  isParentMessage,
  WORKER_CONFIG_ENV,
  type WorkerMessage,
} from "./fault-protocol.ts";
import { Prng } from "./prng.ts";

const config = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? "") as FaultWorkerConfig;
// Warnings only (lost connections, lost leases): the test keeps them in the worker's log file.
configureLogging({ level: "warn", format: "json" });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const never = new AbortController().signal;

function tell(message: WorkerMessage): void {
  process.send?.(message);
}

// The parent going away (the test ended or crashed) must not leave this process behind.
process.on("disconnect", () => process.exit(0));

const witness = net.connect(config.witnessPort, "127.0.0.1");
witness.setNoDelay(true);
await once(witness, "connect");
// Without the witness nothing this process does is counted: stop at once rather than run uncounted.
witness.on("close", () => process.exit(3));
witness.on("error", () => process.exit(3));

const acks = new Map<number, () => void>();
let nextSeq = 0;
let received = "";
witness.on("data", (chunk: Buffer) => {
  received += chunk.toString();
  let newline = received.indexOf("\n");
  while (newline >= 0) {
    const line = received.slice(0, newline);
    received = received.slice(newline + 1);
    newline = received.indexOf("\n");
    const [kind, seq] = line.split(" ");
    if (kind === "k") {
      acks.get(Number(seq))?.();
      acks.delete(Number(seq));
    }
  }
});
const send = (line: string): void => {
  witness.write(`${line}\n`);
};
send(`hello ${config.name} ${process.pid}`);

/**
 * Tells the witness that the loop no longer holds, and waits for it to have counted that: only then
 * may the permit go back. Otherwise another process's "+" could reach the witness before this "-"
 * and make a correct semaphore look as if it exceeded the limit.
 */
function stopHolding(loop: number): Promise<void> {
  const seq = nextSeq++;
  const counted = new Promise<void>((resolve) => acks.set(seq, resolve));
  send(`- ${loop} ${seq}`);
  return counted;
}

const connection = new RedisConnection({ url: config.redisUrl, connectionName: config.name });
const semaphore = new RedisSemaphore({
  connection,
  activityArn: config.activityArn,
  limit: config.limit,
  leaseTtlMs: config.ttlMs,
  holderName: config.name,
  name: config.name,
  onLeasesLost: (count) => send(`note ${count} lease(s) lost while held`),
});

/** The last limit change known to be settled everywhere (see fault-protocol.ts). */
let settledEpoch = config.epoch;
/** Hold durations while the test slows the tasks down, else the configured ones. */
let holdMs = config.holdMs;
process.on("message", (message: unknown) => {
  if (!isParentMessage(message)) return;
  if (message.type === "hold") {
    holdMs = message.holdMs ?? config.holdMs;
  } else if (message.type === "limit") {
    semaphore.setLimit(message.limit);
    tell({ type: "ack", epoch: message.epoch });
  } else {
    settledEpoch = Math.max(settledEpoch, message.epoch);
  }
});

// An event loop stalled for a large part of the TTL can cost a held lease by design (its refresh
// comes too late): noted so that such a run can be told apart from a semaphore defect.
let tickedAt = performance.now();
const stallNoted = Math.min(1_000, config.ttlMs / 4);
setInterval(() => {
  const now = performance.now();
  if (now - tickedAt > 200 + stallNoted)
    send(`note event loop stalled ${Math.round(now - tickedAt - 200)} ms`);
  tickedAt = now;
}, 200);

async function loop(index: number, rng: Prng): Promise<void> {
  for (;;) {
    await sleep(rng.between(config.thinkMs[0], config.thinkMs[1]));
    send(`w ${index}`);
    const epoch = settledEpoch;
    const permit = await semaphore.acquire(never);
    send(`+ ${index} ${epoch}`);
    await sleep(rng.logUniform(holdMs[0], holdMs[1]));
    await stopHolding(index);
    await permit.release();
  }
}

const rng = new Prng(config.seed);
for (let i = 0; i < config.loops; i++) {
  const loopRng = new Prng(rng.fork());
  loop(i, loopRng).catch((error: unknown) => {
    // Never expected: the test reports the exit and this output.
    console.error(`loop ${i} failed:`, error);
    process.exit(2);
  });
}
tell({ type: "ready" });
