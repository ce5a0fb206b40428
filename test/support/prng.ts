/**
 * A small seeded pseudo-random generator for tests whose randomness must be reproducible from a
 * seed (the fault test's schedule). mulberry32: 32 bits of state, fast, good enough for choosing
 * faults; not for anything cryptographic.
 */
export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** A float in [min, max). */
  between(min: number, max: number): number {
    return min + this.next() * (max - min);
  }

  /**
   * A float in [min, max) spread evenly over orders of magnitude: durations from 6 s to 60 s come out
   * as often below 19 s as above, so both short and long ones show up in every run.
   */
  logUniform(min: number, max: number): number {
    return Math.exp(this.between(Math.log(min), Math.log(max)));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** A generator of its own, derived from this one's next value (for a child process). */
  fork(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
}
