/**
 * Certificates and keys of the test control plane: one CA, a serving certificate for 127.0.0.1 (used
 * by the apiserver, controller-manager and scheduler), client certificates for each component and
 * for the admin, and the service account signing key pair.
 *
 * Made with the `openssl` CLI rather than node:crypto: node:crypto generates keys and parses
 * certificates but cannot issue (sign) X.509 certificates, and openssl is on every Debian machine.
 * EC P-256 keys throughout: generated in milliseconds, and accepted by every component (including
 * the apiserver as a service account signing key, ES256).
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A certificate and its private key, as file paths. */
export interface CertPair {
  cert: string;
  key: string;
}

/** Every credential file of one control plane, all under one folder. */
export interface ClusterPki {
  dir: string;
  ca: CertPair;
  /** Serving certificate for 127.0.0.1 / localhost and the in-cluster names of the apiserver. */
  serving: CertPair;
  /** Client certificate in the group system:masters (the kubeconfig users get). */
  admin: CertPair;
  controllerManager: CertPair;
  scheduler: CertPair;
  /** kwok patches node and pod status of every namespace: system:masters as well. */
  kwok: CertPair;
  /** The apiserver's client certificate towards aggregated API servers (front proxy). */
  frontProxyClient: CertPair;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const DAYS = "3650";

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(error)}`);
  }
}

/** Issues a certificate signed by the CA; `extensions` are `-addext` values. */
async function issue(
  dir: string,
  name: string,
  subject: string,
  ca: CertPair,
  extensions: string[],
): Promise<CertPair> {
  const pair = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  // `req -x509 -CA` (OpenSSL 3.0+) creates the key and the signed certificate in one call.
  await openssl([
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    pair.key,
    "-out",
    pair.cert,
    "-days",
    DAYS,
    "-subj",
    subject,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    ...extensions.flatMap((extension) => ["-addext", extension]),
  ]);
  return pair;
}

function client(dir: string, name: string, subject: string, ca: CertPair): Promise<CertPair> {
  return issue(dir, name, subject, ca, ["extendedKeyUsage=clientAuth"]);
}

/** Creates (or overwrites) every credential of a control plane in `dir`. */
export async function createPki(dir: string): Promise<ClusterPki> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = { cert: path.join(dir, "ca.crt"), key: path.join(dir, "ca.key") };
  await openssl([
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    ca.key,
    "-out",
    ca.cert,
    "-days",
    DAYS,
    "-subj",
    "/CN=sfn-operator-test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ]);
  const serviceAccountKey = path.join(dir, "service-account.key");
  const serviceAccountPub = path.join(dir, "service-account.pub");
  const saKey = openssl([
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    serviceAccountKey,
  ]).then(() => openssl(["pkey", "-in", serviceAccountKey, "-pubout", "-out", serviceAccountPub]));
  const [serving, admin, controllerManager, scheduler, kwok, frontProxyClient] = await Promise.all([
    issue(dir, "serving", "/CN=kube-apiserver", ca, [
      "extendedKeyUsage=serverAuth",
      // 10.0.0.1 is the `kubernetes` Service's address in --service-cluster-ip-range.
      "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default," +
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
    ]),
    client(dir, "admin", "/O=system:masters/CN=sfn-test-admin", ca),
    // The bootstrap RBAC policy binds these user names to the components' cluster roles.
    client(dir, "kube-controller-manager", "/CN=system:kube-controller-manager", ca),
    client(dir, "kube-scheduler", "/CN=system:kube-scheduler", ca),
    client(dir, "kwok", "/O=system:masters/CN=kwok", ca),
    client(dir, "front-proxy-client", "/CN=front-proxy-client", ca),
    saKey,
  ]);
  return {
    dir,
    ca,
    serving,
    admin,
    controllerManager,
    scheduler,
    kwok,
    frontProxyClient,
    serviceAccountKey,
    serviceAccountPub,
  };
}
