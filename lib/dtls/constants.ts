/** Wire constants of DTLS 1.2 (RFC 6347, RFC 5246) and the PSK suites we speak (RFC 4279, RFC 5487, RFC 6655). */

export const ContentType = {
  change_cipher_spec: 20,
  alert: 21,
  handshake: 22,
  application_data: 23,
} as const;

export const HandshakeType = {
  hello_request: 0,
  client_hello: 1,
  server_hello: 2,
  hello_verify_request: 3,
  server_key_exchange: 12,
  server_hello_done: 14,
  client_key_exchange: 16,
  finished: 20,
} as const;

export const AlertLevel = { warning: 1, fatal: 2 } as const;

export const AlertDescription = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  illegal_parameter: 47,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  internal_error: 80,
  no_renegotiation: 100,
  unknown_psk_identity: 115,
} as const;

/** DTLS versions are one's complements of (major, minor): 1.2 = 0xfefd, 1.0 = 0xfeff. */
export const DTLS_1_2 = 0xfefd;
export const DTLS_1_0 = 0xfeff;

export const CipherSuiteId = {
  TLS_PSK_WITH_AES_128_GCM_SHA256: 0x00a8,
  TLS_PSK_WITH_AES_128_CCM_8: 0xc0a8,
  /** RFC 5746 §3.3: a client that supports secure renegotiation may signal it with this suite. */
  TLS_EMPTY_RENEGOTIATION_INFO_SCSV: 0x00ff,
} as const;

export const ExtensionType = {
  extended_master_secret: 23,
  renegotiation_info: 0xff01,
} as const;

/** Names for alert codes, for logs and error messages. */
export function alertName(description: number): string {
  for (const [name, value] of Object.entries(AlertDescription)) if (value === description) return name;
  return `alert_${description}`;
}
