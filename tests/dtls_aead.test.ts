/**
 * The record layer's two AES-128-GCM backends (libcrypto through FFI, node:crypto) agree byte for
 * byte, refuse every tampered record, and the choice between them fails or falls back as documented.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { type GcmKey, newGcmKey, type RecordCipherBackend, selectRecordCipher } from "../lib/dtls/aead.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { runDenoScript } from "./support/process.ts";

const BACKENDS: RecordCipherBackend[] = ["openssl", "node"];

function bytes(random: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
}

function sealWith(k: GcmKey, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + 16 + 3).fill(0xee);
  k.seal(nonce, aad, plaintext, out, 3);
  assertEquals(out.subarray(0, 3), new Uint8Array([0xee, 0xee, 0xee]), "seal writes before `at`");
  return out.subarray(3);
}

Deno.test("aead: this machine's libcrypto loads (the benchmark and CI run the openssl backend)", () => {
  assertEquals(selectRecordCipher("auto"), { backend: "openssl" });
});

Deno.test("aead: NIST GCM test case 4 on both backends", () => {
  const h = (s: string) => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));
  const plaintext = h(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
  );
  const expected = h(
    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091" +
      "5bc94fbc3221a5db94fae95ae7121a47",
  );
  for (const b of BACKENDS) {
    const k = newGcmKey(h("feffe9928665731c6d6a8f9467308308"), b);
    const nonce = h("cafebabefacedbaddecaf888");
    const aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    assertEquals(sealWith(k, nonce, aad, plaintext), expected, b);
  }
});

Deno.test("aead: sealed by one backend, opened by the other, for sizes 0..16 384; tampering is refused", () => {
  const random = seededRandom(7);
  const key = bytes(random, 16);
  const keys = { openssl: newGcmKey(key, "openssl"), node: newGcmKey(key, "node") };
  for (const n of [0, 1, 15, 16, 17, 100, 1200, 1399, 4096, 16384]) {
    const nonce = bytes(random, 12);
    const aad = bytes(random, 13);
    const plaintext = bytes(random, n);
    const sealed = sealWith(keys.openssl, nonce, aad, plaintext);
    assertEquals(sealWith(keys.node, nonce, aad, plaintext), sealed, `${n} bytes: both backends seal alike`);
    for (const [sealer, opener] of [["openssl", "node"], ["node", "openssl"]] as const) {
      const record = sealWith(keys[sealer], nonce, aad, plaintext);
      // node:crypto answers a Buffer: compared as plain bytes.
      const open = (ct: Uint8Array, tag: Uint8Array, a = aad, iv = nonce) => {
        const p = keys[opener].open(iv, a, ct, tag);
        return p && Uint8Array.from(p);
      };
      assertEquals(
        open(record.subarray(0, n), record.subarray(n)),
        plaintext,
        `${sealer} → ${opener}, ${n} bytes`,
      );
      const flip = (b: Uint8Array, at: number) => {
        const c = b.slice();
        c[at] ^= 1;
        return c;
      };
      if (n > 0) {
        assertEquals(open(flip(record.subarray(0, n), n - 1), record.subarray(n)), null, "ciphertext bit");
      }
      assertEquals(open(record.subarray(0, n), flip(record.subarray(n), 15)), null, "tag bit");
      assertEquals(open(record.subarray(0, n), record.subarray(n), flip(aad, 12)), null, "aad bit");
      assertEquals(open(record.subarray(0, n), record.subarray(n), aad, flip(nonce, 11)), null, "nonce bit");
      assertEquals(open(record.subarray(0, n), record.subarray(n, n + 8)), null, "short tag");
    }
  }
});

Deno.test("aead: one key seals and opens many records in a row (the context is reused, not reset wrongly)", () => {
  const random = seededRandom(11);
  const key = bytes(random, 16);
  const a = newGcmKey(key, "openssl");
  const b = newGcmKey(key, "node");
  for (let i = 0; i < 200; i++) {
    const nonce = bytes(random, 12);
    const aad = bytes(random, 13);
    const plaintext = bytes(random, Math.floor(random() * 1500));
    const sealed = sealWith(a, nonce, aad, plaintext);
    assertEquals(sealed, sealWith(b, nonce, aad, plaintext));
    const n = plaintext.length;
    assertEquals(a.open(nonce, aad, sealed.subarray(0, n), sealed.subarray(n)), plaintext);
    // A failed open in between leaves the context usable.
    assertEquals(a.open(nonce, aad, sealed.subarray(0, n), new Uint8Array(16)), null);
  }
});

async function selectWithoutFfi(choice: string): Promise<{ code: number; out: string }> {
  const script = `import { selectRecordCipher } from ${
    JSON.stringify(new URL("../lib/dtls/aead.ts", import.meta.url).href)
  };
try { console.log(JSON.stringify(selectRecordCipher(${JSON.stringify(choice)}))); }
catch (e) { console.log("ERROR " + e.message); Deno.exit(3); }`;
  const r = await runDenoScript(script, ["--allow-read", "--allow-env"]);
  return { code: r.code, out: r.stdout + r.stderr };
}

Deno.test("aead: without FFI permission, auto falls back to node:crypto saying why; openssl names the fix", async () => {
  const auto = await selectWithoutFfi("auto");
  assertEquals(auto.code, 0, auto.out);
  const chosen = JSON.parse(auto.out) as { backend: string; reason?: string };
  assertEquals(chosen.backend, "node");
  assert(chosen.reason && /ffi/i.test(chosen.reason), `the reason names FFI: ${chosen.reason}`);
  const forced = await selectWithoutFfi("openssl");
  assertEquals(forced.code, 3, forced.out);
  assertMatch(forced.out, /HOP_RECORD_CIPHER=openssl/);
  assertMatch(forced.out, /--allow-ffi/);
});
