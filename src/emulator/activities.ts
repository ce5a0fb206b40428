/**
 * The activity registry: CreateActivity, DescribeActivity, ListActivities and DeleteActivity with
 * AWS's naming, ARN and paging rules.
 */
import { ACTIVITY_NAME_PATTERN } from "../api/defaults.ts";
import { AwsError } from "./errors.ts";

/** An activity as the registry keeps it. */
export interface Activity {
  arn: string;
  name: string;
  creationDate: Date;
  /** Creation order, the listing order and the anchor of `nextToken`. */
  seq: number;
}

/** One page of ListActivities. */
export interface ActivityPage {
  activities: Activity[];
  nextToken?: string;
}

// Partition, region and account as AWS writes them; the name part is checked by ACTIVITY_NAME_PATTERN.
const ARN_PATTERN = /^arn:aws(?:-[a-z]+)*:states:[a-z0-9-]+:\d{12}:activity:(.+)$/;
const NEXT_TOKEN_PREFIX = "sfn-emulator-activities:";
const DEFAULT_PAGE_SIZE = 100;

/** Refuse what is not an activity ARN at all (InvalidArn), as every activity action does. */
export function checkActivityArn(arn: string): void {
  const match = ARN_PATTERN.exec(arn);
  if (!match?.[1] || !ACTIVITY_NAME_PATTERN.test(match[1])) {
    throw new AwsError("InvalidArn", `Invalid Arn: 'Resource type not valid in this context: ${arn}'`);
  }
}

/** Activities of one emulated account in one region. */
export class ActivityRegistry {
  readonly #region: string;
  readonly #accountId: string;
  readonly #byArn = new Map<string, Activity>();
  #seq = 0;

  constructor(region: string, accountId: string) {
    this.#region = region;
    this.#accountId = accountId;
  }

  /** The ARN an activity of this name has (whether or not it exists). */
  arnOf(name: string): string {
    return `arn:aws:states:${this.#region}:${this.#accountId}:activity:${name}`;
  }

  /** CreateActivity: idempotent by name, answering the existing activity when there is one. */
  create(name: string): Activity {
    if (!ACTIVITY_NAME_PATTERN.test(name)) throw new AwsError("InvalidName", `Invalid Name: '${name}'`);
    const arn = this.arnOf(name);
    const existing = this.#byArn.get(arn);
    if (existing) return existing;
    this.#seq += 1;
    const activity: Activity = { arn, name, creationDate: new Date(), seq: this.#seq };
    this.#byArn.set(arn, activity);
    return activity;
  }

  /** The activity, or undefined when the ARN is well-formed and unknown. Throws InvalidArn. */
  find(arn: string): Activity | undefined {
    checkActivityArn(arn);
    return this.#byArn.get(arn);
  }

  /** The activity, or ActivityDoesNotExist. */
  get(arn: string): Activity {
    const activity = this.find(arn);
    if (!activity) throw new AwsError("ActivityDoesNotExist", `Activity Does Not Exist: '${arn}'`);
    return activity;
  }

  /** ListActivities: in creation order, `maxResults` 0 meaning AWS's default page size. */
  list(maxResults: number, nextToken: string | undefined): ActivityPage {
    const after = nextToken === undefined ? 0 : decodeNextToken(nextToken);
    const size = maxResults || DEFAULT_PAGE_SIZE;
    const rest = [...this.#byArn.values()].filter((a) => a.seq > after).sort((a, b) => a.seq - b.seq);
    const activities = rest.slice(0, size);
    const last = activities.at(-1);
    return rest.length > size && last ? { activities, nextToken: encodeNextToken(last.seq) } : { activities };
  }

  /** DeleteActivity: deleting an unknown (well-formed) ARN succeeds, as at AWS. True if it existed. */
  delete(arn: string): boolean {
    checkActivityArn(arn);
    return this.#byArn.delete(arn);
  }

  all(): Activity[] {
    return [...this.#byArn.values()];
  }

  clear(): void {
    this.#byArn.clear();
  }
}

function encodeNextToken(seq: number): string {
  return Buffer.from(`${NEXT_TOKEN_PREFIX}${seq}`).toString("base64");
}

function decodeNextToken(token: string): number {
  const text = Buffer.from(token, "base64").toString();
  const seq = text.startsWith(NEXT_TOKEN_PREFIX) ? Number(text.slice(NEXT_TOKEN_PREFIX.length)) : Number.NaN;
  if (!Number.isSafeInteger(seq) || seq < 0) throw new AwsError("InvalidToken", "Invalid Token: 'nextToken'");
  return seq;
}
