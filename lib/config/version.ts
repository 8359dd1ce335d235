/** The product version, printed by --version and announced in the tunnel handshake. */
export const VERSION = "0.1.0";
