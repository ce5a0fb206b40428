/**
 * The fault test's independent witness: a small counting server in the test process. Worker
 * processes tell it over TCP when a loop waits, holds and stops holding (fault-protocol.ts); it
 * counts what is in flight from that alone, never from Redis or the semaphore's bookkeeping. A
 * killed process's connection closes and its holdings end here, as a crashed pod's tasks end.
 * A loop reports a hold after its permit was granted and stops holding here before it releases
 * (the witness acknowledges first), so each counted hold lies within a permit's life: with a correct
 * semaphore the count can be late, never too high.
 *
 * Safety, checked at every new hold: the count must stay within the limit. Limit changes are
 * numbered (epochs); a hold carries the last change its process knew to be settled (acknowledged by
 * every process, see the test) when its loop asked for the permit, and may bring the count up to the
 * largest limit since that change. So while a change propagates the larger of the old and new limit
 * applies; after a lowered limit, holds that were asked for before it may still be granted under the
 * old one and finish (the documented drain), but a hold asked for once the change settled may not
 * bring the count above the new limit.
 *
 * Why checking at new holds only is complete: the count only grows at a new hold, and a lowered
 * limit is allowed to leave the count above it until holders finish.
 *
 * Liveness, checked only while armed (a quiet phase): while the count is below what is available
 * and a loop waits ("under-use"), that must end within `slackMs` of the later of its start and the
 * horizon. Available: the limit, less the permits a killed process may still hold in Redis until its
 * TTL ends (as many as it had loops: beside the holds the witness saw, a process can die with leases
 * nobody was told of yet, e.g. granted by a script whose answer it never read). The horizon: until
 * when faults excuse any under-use (a Redis restart: a correct semaphore may grant nothing for up to
 * a TTL after losing its data).
 */
import { once } from "node:events";
import net from "node:net";

export interface Violation {
  kind: "limit" | "liveness" | "protocol";
  /** Seconds since the witness started. */
  at: number;
  count: number;
  limit: number;
  detail: string;
  /** The last events before it, after the faults older than those, one per line. */
  recent: string[];
}

interface Process_ {
  name: string;
  holding: Set<number>;
  waiting: Set<number>;
  closed: boolean;
  gone: Promise<void>;
  markGone: () => void;
}

const RECENT_EVENTS = 40;
const RECENT_FAULTS = 15;
/** More than enough to see what went wrong; a defect can produce thousands. */
const MAX_VIOLATIONS_KEPT = 50;

export class Witness {
  readonly violations: Violation[] = [];
  violationCount = 0;
  /** Highest count seen, and how many holds were counted in all. */
  peak = 0;
  holds = 0;
  /** Longest under-use episode seen while armed, in ms (for the report). */
  longestUnderuseMs = 0;
  /** Whether a loop waited at some point while armed (else the liveness check proved nothing). */
  sawDemandWhileArmed = false;
  readonly #server: net.Server;
  readonly #startedAt = performance.now();
  readonly #limits: number[];
  readonly #processes = new Map<string, Process_>();
  readonly #events: string[] = [];
  readonly #faults: Array<{ at: number; line: string }> = [];
  readonly #eventTimes: number[] = [];
  #count = 0;
  #waiting = 0;
  /** Permits killed processes may still hold in Redis, and until when (ms since start). */
  readonly #tied: Array<{ until: number; permits: number }> = [];
  #horizon = 0;
  #armed = false;
  #slackMs = 0;
  #underuseSince: number | undefined;
  #underuseReported = false;
  readonly #timer: NodeJS.Timeout;
  /** Every event, when asked (`logTo`): the short in-memory log is for violations' reports. */
  #sink: ((line: string) => void) | undefined;

  private constructor(server: net.Server, initialLimit: number) {
    this.#server = server;
    this.#limits = [initialLimit];
    server.on("connection", (socket) => this.#accept(socket));
    // Under-use can last without any message arriving: look at it on a timer too.
    this.#timer = setInterval(() => this.#checkUnderuse(), 100);
  }

  static async start(initialLimit: number): Promise<Witness> {
    const server = net.createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return new Witness(server, initialLimit);
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Writes every event from now on to `sink` too (a file kept with a failed run's logs). */
  logTo(sink: (line: string) => void): void {
    this.#sink = sink;
  }

  /** Ms since the witness started (the time of every record). */
  now(): number {
    return performance.now() - this.#startedAt;
  }

  get count(): number {
    return this.#count;
  }

  get limit(): number {
    return this.#limits[this.#limits.length - 1] as number;
  }

  get horizon(): number {
    return this.#horizon;
  }

  /** Loops of the named process holding a permit now (0 once it is gone). */
  holdingOf(name: string): number {
    return this.#processes.get(name)?.holding.size ?? 0;
  }

  /** Resolves when the named process's connection has closed (at once if it never connected). */
  gone(name: string): Promise<void> {
    return this.#processes.get(name)?.gone ?? Promise.resolve();
  }

  /** Records a fault (kept for every violation's report). */
  fault(text: string): void {
    const line = `${this.#stamp()} ${text}`;
    this.#faults.push({ at: this.now(), line });
    this.#push(`${line}  <== fault`);
  }

  /** A limit change starts propagating; `epoch` numbers it (the initial limit is epoch 0). */
  limitChanged(epoch: number, limit: number): void {
    if (epoch !== this.#limits.length) throw new Error(`limit epoch ${epoch} out of order`);
    this.#limits.push(limit);
    this.fault(`limit -> ${limit} (epoch ${epoch})`);
  }

  /** Under-use is excused until `at` (ms since start) at least. */
  excuseUntil(at: number, why: string): void {
    if (at > this.#horizon) this.#horizon = at;
    this.#event(`under-use excused until ${(at / 1000).toFixed(1)}s: ${why}`);
  }

  /** A process was killed: up to `permits` leases of its own stay in Redis for `ttlMs`. */
  processKilled(name: string, permits: number, ttlMs: number): void {
    const until = this.now() + ttlMs;
    this.#tied.push({ until, permits });
    this.#event(`${name}'s up to ${permits} lease(s) may stay until ${(until / 1000).toFixed(1)}s`);
  }

  /** Starts (or stops) checking liveness, allowing `slackMs` past the horizon. */
  arm(on: boolean, slackMs = 0): void {
    this.#armed = on;
    this.#slackMs = slackMs;
    this.#event(on ? `liveness armed (slack ${slackMs} ms)` : "liveness disarmed");
    this.#checkUnderuse();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (const process_ of this.#processes.values()) process_.markGone();
    this.#server.close();
    // Workers still connected are killed by the test; their sockets must not keep this open.
    this.#server.unref();
  }

  #accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    let process_: Process_ | undefined;
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString();
      let newline = received.indexOf("\n");
      while (newline >= 0) {
        const line = received.slice(0, newline);
        received = received.slice(newline + 1);
        newline = received.indexOf("\n");
        if (!process_) {
          process_ = this.#hello(line);
          continue;
        }
        this.#message(process_, socket, line);
      }
    });
    socket.on("error", () => {}); // a killed worker resets its connection: "close" follows
    socket.on("close", () => {
      if (process_) this.#closed(process_);
    });
  }

  #hello(line: string): Process_ | undefined {
    const [kind, name, pid] = line.split(" ");
    if (kind !== "hello" || !name) {
      this.#violation("protocol", `expected hello, got "${line}"`);
      return undefined;
    }
    let markGone = (): void => {};
    const gone = new Promise<void>((resolve) => {
      markGone = resolve;
    });
    const process_: Process_ = {
      name,
      holding: new Set(),
      waiting: new Set(),
      closed: false,
      gone,
      markGone,
    };
    this.#processes.set(name, process_);
    this.#event(`${name} connected (pid ${pid})`);
    return process_;
  }

  #message(process_: Process_, socket: net.Socket, line: string): void {
    const space = line.indexOf(" ");
    const kind = line.slice(0, space);
    const rest = line.slice(space + 1);
    const [loopText, argument] = rest.split(" ");
    const loop = Number(loopText);
    switch (kind) {
      case "w":
        if (!process_.waiting.has(loop)) this.#waiting += 1;
        process_.waiting.add(loop);
        break;
      case "+": {
        if (process_.holding.has(loop))
          this.#violation("protocol", `${process_.name} loop ${loop} held twice`);
        if (process_.waiting.delete(loop)) this.#waiting -= 1;
        process_.holding.add(loop);
        this.#count += 1;
        this.holds += 1;
        this.peak = Math.max(this.peak, this.#count);
        const epoch = Number(argument);
        const allowed = Math.max(...this.#limits.slice(epoch));
        this.#event(`${process_.name}/${loop} + (asked at epoch ${epoch}) -> ${this.#count}`);
        if (this.#count > allowed) {
          this.#violation(
            "limit",
            `${process_.name}/${loop} started a hold: ${this.#count} in flight, limit ${allowed}` +
              ` (largest limit since epoch ${epoch}, the last change settled when it asked)`,
            allowed,
          );
        }
        break;
      }
      case "-":
        if (process_.holding.delete(loop)) this.#count -= 1;
        else this.#violation("protocol", `${process_.name} loop ${loop} released without holding`);
        this.#event(`${process_.name}/${loop} - -> ${this.#count}`);
        socket.write(`k ${argument}\n`);
        break;
      case "note":
        this.#event(`${process_.name}: ${rest}`);
        break;
      default:
        this.#violation("protocol", `${process_.name} sent "${line}"`);
    }
    this.#checkUnderuse();
  }

  #closed(process_: Process_): void {
    process_.closed = true;
    this.#count -= process_.holding.size;
    this.#waiting -= process_.waiting.size;
    this.#event(`${process_.name} gone, its ${process_.holding.size} hold(s) ended -> ${this.#count}`);
    process_.holding.clear();
    process_.waiting.clear();
    process_.markGone();
    this.#checkUnderuse();
  }

  #checkUnderuse(): void {
    const now = this.now();
    const tied = this.#tiedNow();
    const available = this.limit - tied;
    const underused = this.#count < available && this.#waiting > 0;
    if (!underused) {
      if (this.#underuseSince !== undefined && this.#armed) {
        this.longestUnderuseMs = Math.max(this.longestUnderuseMs, now - this.#underuseSince);
      }
      this.#underuseSince = undefined;
      this.#underuseReported = false;
    } else if (this.#underuseSince === undefined) {
      this.#underuseSince = now;
    }
    if (!this.#armed) return;
    if (this.#waiting > 0) this.sawDemandWhileArmed = true;
    if (this.#underuseSince === undefined || this.#underuseReported) return;
    const deadline = Math.max(this.#underuseSince, this.#horizon) + this.#slackMs;
    if (now > deadline) {
      this.#underuseReported = true;
      this.#violation(
        "liveness",
        `only ${this.#count} in flight, limit ${this.limit} (${tied} may be held by killed processes),` +
          ` while ${this.#waiting} loop(s) wait, since` +
          ` ${(this.#underuseSince / 1000).toFixed(1)}s; allowed until ${(deadline / 1000).toFixed(1)}s` +
          ` (faults excuse it until ${(this.#horizon / 1000).toFixed(1)}s, plus ${this.#slackMs} ms)`,
      );
    }
  }

  /** Permits that killed processes may still hold in Redis now (an upper bound). */
  #tiedNow(): number {
    const now = this.now();
    let tied = 0;
    for (const entry of this.#tied) if (entry.until > now) tied += entry.permits;
    return tied;
  }

  /** The limit less what killed processes may still hold: at most what live processes can get. */
  get available(): number {
    return this.limit - this.#tiedNow();
  }

  #violation(kind: Violation["kind"], detail: string, limit = this.limit): void {
    this.violationCount += 1;
    this.#event(`VIOLATION (${kind}): ${detail}`);
    if (this.violations.length >= MAX_VIOLATIONS_KEPT) return;
    this.violations.push({
      kind,
      at: Math.round(this.now()) / 1000,
      count: this.#count,
      limit,
      detail,
      recent: this.#recent(),
    });
  }

  /** The faults before the last events, then the last events (faults among them marked). */
  #recent(): string[] {
    const since = this.#eventTimes[Math.max(0, this.#eventTimes.length - RECENT_EVENTS)] ?? 0;
    const earlier = this.#faults.filter((fault) => fault.at < since).slice(-RECENT_FAULTS);
    return [
      ...(earlier.length > 0 ? ["earlier faults:", ...earlier.map((fault) => fault.line)] : []),
      "last events:",
      ...this.#events.slice(-RECENT_EVENTS),
    ];
  }

  #event(text: string): void {
    this.#push(`${this.#stamp()} ${text}`);
  }

  #push(line: string): void {
    this.#events.push(line);
    this.#eventTimes.push(this.now());
    this.#sink?.(line);
    if (this.#events.length > 4 * RECENT_EVENTS) {
      this.#events.splice(0, this.#events.length - RECENT_EVENTS);
      this.#eventTimes.splice(0, this.#eventTimes.length - RECENT_EVENTS);
    }
    if (this.#faults.length > 4 * RECENT_FAULTS) this.#faults.splice(0, this.#faults.length - RECENT_FAULTS);
  }

  #stamp(): string {
    return `${(this.now() / 1000).toFixed(3)}s`;
  }
}
