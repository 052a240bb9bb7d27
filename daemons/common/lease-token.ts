/**
 * The lease token's format, in a module of its own so that the client library can check a
 * lease without loading the mailbox schemas (and zod): messages.ts and protocol-replies.ts
 * both use it.
 */

/** Lease token: 32 lowercase hex digits (128 random bits). */
export const LEASE_TOKEN = /^[0-9a-f]{32}$/;
