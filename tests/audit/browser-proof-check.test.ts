import { describe, expect, it } from 'vitest';
import { consistencyHolds, inclusionHolds, leafHashOf } from '../../src/console/browser/audit-check.js';
import { leafHash, MerkleTree } from '../../src/audit/merkle.js';

// The console checks proofs with its own WebCrypto code (src/console/browser/audit-check.ts); here it is held to the
// server's tree (src/audit/merkle.ts) for every pair of sizes up to 33, and must refuse what the server would.
const tree = new MerkleTree();
for (let index = 0; index < 33; index++) tree.append(leafHash(`{"index":${index}}`));
const hex = (hash: Buffer) => hash.toString('hex');
const flipped = (text: string) => text.replace(/^./, (c) => (c === '0' ? '1' : '0'));

describe("the console's proof checks", () => {
  it('hash a leaf as the server does', async () => {
    expect(await leafHashOf('{"index":7}')).toBe(hex(tree.leafHashAt(7)));
  });

  it('accept every consistency proof the server makes between two sizes', async () => {
    for (let second = 1; second <= 33; second++) {
      for (let first = 1; first <= second; first++) {
        const proof = tree.consistencyProof(first, second).map(hex);
        expect({ first, second, holds: await consistencyHolds(first, second, hex(tree.root(first)), hex(tree.root(second)), proof) }).toEqual({ first, second, holds: true });
      }
    }
  });

  it('refuse a consistency proof against another old root, another new root, a changed step, or a shrunk log', async () => {
    for (const [first, second] of [[1, 2], [3, 8], [4, 9], [7, 33], [16, 32], [5, 5]] as const) {
      const proof = tree.consistencyProof(first, second).map(hex);
      const [oldRoot, newRoot] = [hex(tree.root(first)), hex(tree.root(second))];
      expect(await consistencyHolds(first, second, flipped(oldRoot), newRoot, proof)).toBe(false);
      expect(await consistencyHolds(first, second, oldRoot, flipped(newRoot), proof)).toBe(false);
      if (proof.length > 0) expect(await consistencyHolds(first, second, oldRoot, newRoot, [flipped(proof[0]!), ...proof.slice(1)])).toBe(false);
    }
    expect(await consistencyHolds(9, 8, hex(tree.root(9)), hex(tree.root(8)), [])).toBe(false);
  });

  it('accept every inclusion proof of a 33-leaf tree and refuse one for another index', async () => {
    for (let index = 0; index < 33; index++) {
      const proof = tree.inclusionProof(index, 33).map(hex);
      expect(await inclusionHolds(index, 33, hex(tree.leafHashAt(index)), proof, hex(tree.root(33)))).toBe(true);
      expect(await inclusionHolds((index + 1) % 33, 33, hex(tree.leafHashAt(index)), proof, hex(tree.root(33)))).toBe(false);
    }
  });
});
