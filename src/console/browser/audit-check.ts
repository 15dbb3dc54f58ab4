import { compactVerify, createLocalJWKSet } from 'jose';

/**
 * The regulator's "verify" action, done in the browser with WebCrypto rather than trusted from the server: the
 * checkpoint's signature is checked against the JWKS, and each of the latest leaves is hashed here and proved to
 * be in the signed tree (RFC 9162 §2.1.3.2). The Node verifier (src/audit/merkle.ts) hashes synchronously for
 * speed; WebCrypto is asynchronous, hence this separate, small implementation.
 */
const encoder = new TextEncoder();
const hex = (bytes: ArrayBuffer) => [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
const fromHex = (text: string) => Uint8Array.from(text.match(/../g)!.map((pair) => Number.parseInt(pair, 16)));

async function hashWithPrefix(prefix: number, ...parts: Uint8Array[]): Promise<Uint8Array<ArrayBuffer>> {
  const joined = new Uint8Array(1 + parts.reduce((sum, part) => sum + part.length, 0));
  joined[0] = prefix;
  let offset = 1;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', joined));
}

export const leafHashOf = async (leaf: string) => hex((await hashWithPrefix(0, encoder.encode(leaf))).buffer as ArrayBuffer);

// Hashes come back as Uint8Array<ArrayBuffer>; the loop variable takes any byte array.
export async function inclusionHolds(leafIndex: number, treeSize: number, leafHashHex: string, path: string[], rootHex: string): Promise<boolean> {
  if (leafIndex < 0 || leafIndex >= treeSize) return false;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r: Uint8Array = fromHex(leafHashHex);
  for (const step of path.map(fromHex)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await hashWithPrefix(1, step, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await hashWithPrefix(1, r, step);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && hex(r.buffer as ArrayBuffer) === rootHex;
}

export async function checkpointSignatureHolds(jws: string, checkpoint: { tree_size: number; root_hash: string }): Promise<boolean> {
  const jwks = await (await fetch('/.well-known/jwks.json')).json();
  try {
    const { payload } = await compactVerify(jws, createLocalJWKSet(jwks));
    const signed = JSON.parse(new TextDecoder().decode(payload));
    return signed.tree_size === checkpoint.tree_size && signed.root_hash === checkpoint.root_hash;
  } catch {
    return false;
  }
}

/** RFC 9162 §2.1.4.2: whether the proof shows the tree of `first` leaves to be a prefix of the tree of `second`. */
export async function consistencyHolds(first: number, second: number, firstRootHex: string, secondRootHex: string, proofHex: string[]): Promise<boolean> {
  if (first < 0 || first > second) return false;
  if (first === second) return proofHex.length === 0 && firstRootHex === secondRootHex;
  if (first === 0) return proofHex.length === 0;
  if (proofHex.length === 0) return false;
  const proof = proofHex.map(fromHex);
  const path = (first & (first - 1)) === 0 ? [fromHex(firstRootHex), ...proof] : proof;
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const step of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await hashWithPrefix(1, step, fr);
      sr = await hashWithPrefix(1, step, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = await hashWithPrefix(1, sr, step);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && hex(fr.buffer as ArrayBuffer) === firstRootHex && hex(sr.buffer as ArrayBuffer) === secondRootHex;
}
