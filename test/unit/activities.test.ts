import { expect } from "chai";
import { describeActivityError } from "../../src/operator/activities.ts";
import { type ActivityError, ActivityError as ActivityErrorClass } from "../../src/operator/reconcile.ts";

/** Strings that must never reach a condition or an event. */
const ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE";
const SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";

/** What the SDK attaches to a service exception: here with the request's credentials in its headers. */
const RESPONSE = {
  $response: {
    statusCode: 400,
    headers: {
      authorization: `AWS4-HMAC-SHA256 Credential=${ACCESS_KEY_ID}/20261130/us-east-1/states/aws4_request`,
      "x-amz-security-token": SESSION_TOKEN,
    },
  },
  $metadata: { httpStatusCode: 400, requestId: "5f4b6a9e-0000-4000-8000-000000000001", attempts: 1 },
  credentials: {
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    sessionToken: SESSION_TOKEN,
  },
};

/** A service exception shaped like the SDK's (SFNServiceException): name, $fault, $metadata. */
function awsError(name: string, message: string, status = 400, fault: "client" | "server" = "client"): Error {
  return Object.assign(new Error(message), { name }, RESPONSE, {
    $fault: fault,
    $metadata: { ...RESPONSE.$metadata, httpStatusCode: status },
  });
}

function expectNoCredentials(error: ActivityError): void {
  for (const secret of [ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN]) {
    expect(error.message).to.not.contain(secret);
    expect(error.reason).to.not.contain(secret);
  }
}

describe("describeActivityError", () => {
  it("AccessDeniedException: AccessDenied, with the permission to grant", () => {
    const error = describeActivityError(
      "sum",
      "us-east-1",
      awsError(
        "AccessDeniedException",
        `User: arn:aws:sts::123456789012:assumed-role/sfn-operator/${ACCESS_KEY_ID} is not authorized to perform: states:CreateActivity`,
      ),
    );
    expect(error).to.be.instanceOf(ActivityErrorClass);
    expect(error.reason).to.equal("AccessDenied");
    expect(error.message).to.contain('activity "sum" in us-east-1');
    expect(error.message).to.contain("states:CreateActivity");
    expectNoCredentials(error);
  });

  it("a refused signature is an access problem, and its canonical request (with the key id) is not repeated", () => {
    const error = describeActivityError(
      "sum",
      "us-east-1",
      awsError(
        "InvalidSignatureException",
        `The request signature we calculated does not match the signature you provided. The Canonical String for this request should have been 'POST / ... Credential=${ACCESS_KEY_ID}/20261130'`,
      ),
    );
    expect(error.reason).to.equal("AccessDenied");
    expectNoCredentials(error);
  });

  it("ThrottlingException: Throttled, retried with backoff", () => {
    const error = describeActivityError(
      "sum",
      "us-east-1",
      awsError("ThrottlingException", `Rate exceeded for ${ACCESS_KEY_ID}`),
    );
    expect(error.reason).to.equal("Throttled");
    expect(error.message).to.contain("ThrottlingException");
    expect(error.message).to.contain("retrying");
    expectNoCredentials(error);
    expect(
      describeActivityError("sum", undefined, awsError("TooManyRequestsException", "slow down")).reason,
    ).to.equal("Throttled");
  });

  it("a network error: AwsUnavailable, retried", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8083"), {
      code: "ECONNREFUSED",
      errno: -111,
      syscall: "connect",
      address: "127.0.0.1",
      port: 8083,
      ...RESPONSE,
      $metadata: undefined,
    });
    const error = describeActivityError("sum", "us-east-1", refused);
    expect(error.reason).to.equal("AwsUnavailable");
    expect(error.message).to.contain("ECONNREFUSED");
    expect(error.message).to.contain("retrying");
    expectNoCredentials(error);
  });

  it("an AWS server fault or a timeout: AwsUnavailable", () => {
    expect(
      describeActivityError("sum", "us-east-1", awsError("ServiceUnavailable", "try later", 503, "server"))
        .reason,
    ).to.equal("AwsUnavailable");
    expect(
      describeActivityError("sum", "us-east-1", awsError("InternalFailure", "oops", 500, "server")).reason,
    ).to.equal("AwsUnavailable");
    const timeout = Object.assign(new Error("Connection timed out after 30000 ms"), { name: "TimeoutError" });
    expect(describeActivityError("sum", "us-east-1", timeout).reason).to.equal("AwsUnavailable");
  });

  it("InvalidName: ActivityRefused, with AWS's words about the name", () => {
    const error = describeActivityError("sum!", "eu-west-1", awsError("InvalidName", "Invalid Name: 'sum!'"));
    expect(error.reason).to.equal("ActivityRefused");
    expect(error.message).to.contain('activity "sum!" in eu-west-1');
    expect(error.message).to.contain("InvalidName");
    expect(error.message).to.contain("Invalid Name: 'sum!'");
    expectNoCredentials(error);
    for (const name of ["ValidationException", "ActivityLimitExceeded", "TooManyTags"]) {
      expect(describeActivityError("sum", "eu-west-1", awsError(name, "no")).reason, name).to.equal(
        "ActivityRefused",
      );
    }
  });

  it("a missing region: AwsConfiguration, saying what to set", () => {
    const error = describeActivityError("sum", undefined, new Error("Region is missing"));
    expect(error.reason).to.equal("AwsConfiguration");
    expect(error.message).to.contain('activity "sum"');
    expect(error.message).to.not.contain(" in undefined");
    expect(error.message).to.contain("no AWS region configured");
    expect(error.message).to.contain("AWS_REGION");
    expectNoCredentials(error);
  });

  it("no credentials at all: AwsConfiguration", () => {
    const error = describeActivityError(
      "sum",
      "us-east-1",
      Object.assign(new Error("Could not load credentials from any providers"), {
        name: "CredentialsProviderError",
        tryNextLink: false,
      }),
    );
    expect(error.reason).to.equal("AwsConfiguration");
    expect(error.message).to.contain("AWS_ACCESS_KEY_ID");
  });

  it("anything else: AwsError with AWS's message, never the request's credentials", () => {
    const error = describeActivityError("sum", "us-east-1", awsError("ActivityAlreadyExists", "exists"));
    expect(error.reason).to.equal("AwsError");
    expect(error.message).to.contain("ActivityAlreadyExists");
    expect(error.message).to.contain("exists");
    expectNoCredentials(error);
    // Not even an Error.
    const odd = describeActivityError("sum", "us-east-1", "a string was thrown");
    expect(odd.reason).to.equal("AwsError");
  });

  it("gives reasons a condition accepts (CamelCase) in every case", () => {
    const errors: unknown[] = [
      awsError("AccessDeniedException", "no"),
      awsError("ThrottlingException", "slow"),
      Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      awsError("InvalidName", "bad"),
      new Error("Region is missing"),
      awsError("Whatever", "x"),
      undefined,
    ];
    for (const error of errors) {
      const described = describeActivityError("sum", "us-east-1", error);
      // metav1.Condition's reason: ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$
      expect(described.reason).to.match(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/);
      expect(described.message.length).to.be.greaterThan(0);
    }
  });
});
