import { signWithPlatformKey, type KeyRing } from '../identity/keys.js';

/**
 * A release receipt: a compact JWS signed with the platform key (published in /.well-known/jwks.json), so any
 * JOSE library verifies it offline. It binds the output to its job, operator, data versions, policy, SQL and
 * the audit leaf that recorded the release.
 */
export type ReceiptPayload = {
  job: string;
  operator: string;
  datasets: Record<string, string>;
  policy_hash: string;
  sql_hash: string;
  output_hash: string;
  audit_leaf_index: number;
  released_at: string;
};

export const receiptType = 'pds-receipt+jws';

export function signReceipt(keys: KeyRing, payload: ReceiptPayload): string {
  return signWithPlatformKey(keys, receiptType, payload);
}
