/**
 * Self-signed mode: a local certificate authority kept in the data directory signs one certificate
 * per host name. Trusting the one CA certificate (ca.crt) makes every host's chain verify.
 */
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 86_400_000;

export interface PemPair {
  cert: string;
  key: string;
}

export interface DevCa {
  /** The CA certificate, PEM: what clients trust. */
  certPem: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

function serial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f;
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function keyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

async function importKey(pem: string): Promise<CryptoKey> {
  return await crypto.subtle.importKey("pkcs8", x509.PemConverter.decodeFirst(pem), ALG, true, ["sign"]);
}

/** Loads the CA from dir/ca.crt + dir/ca.key, creating both on first use. */
export async function loadOrCreateCa(dir: string): Promise<DevCa> {
  await Deno.mkdir(dir, { recursive: true });
  const certFile = `${dir}/ca.crt`;
  const keyFile = `${dir}/ca.key`;
  try {
    const certPem = await Deno.readTextFile(certFile);
    const privateKey = await importKey(await Deno.readTextFile(keyFile));
    const cert = new x509.X509Certificate(certPem);
    return { certPem, cert, keys: { privateKey, publicKey: await cert.publicKey.export() } };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=HopGate local CA ${new Date().toISOString().slice(0, 10)}, O=HopGate`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 3650 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const certPem = cert.toString("pem");
  await Deno.writeTextFile(keyFile, await keyPem(keys.privateKey), { mode: 0o600 });
  await Deno.writeTextFile(certFile, certPem);
  return { certPem, cert, keys };
}

/**
 * Issues a leaf certificate for a host name (plus `extraNames`, DNS names or IP literals), signed
 * by the CA; valid 825 days (the browsers' limit).
 */
export async function issueHostCertificate(
  ca: DevCa,
  hostname: string,
  extraNames: string[] = [],
): Promise<PemPair> {
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${hostname}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 825 * DAY),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: hostname },
        ...extraNames.map((n) =>
          /^[\d.]+$|:/.test(n) ? { type: "ip" as const, value: n } : { type: "dns" as const, value: n }
        ),
      ]),
    ],
  });
  return { cert: cert.toString("pem") + "\n" + ca.certPem, key: await keyPem(keys.privateKey) };
}
