/**
 * A lease token as the client protocol carries it (docs/PROTOCOL.md §1.2), in a module of
 * its own so that the client library checks a lease answer without loading the mailbox
 * schemas (zod) or the token's cryptography (lease-token.ts): protocol.ts and
 * protocol-replies.ts both use it.
 */

/**
 * Opaque lowercase hex, 2 … 256 digits. Today's tokens are 82 digits (lease-token.ts); a
 * client must not look inside.
 */
export const CLIENT_LEASE_TOKEN = /^[0-9a-f]{2,256}$/;
