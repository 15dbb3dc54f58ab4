import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { policiesDir } from '../../src/bootstrap.js';
import { loadPolicyEngine, PolicyLoadError, type CedarEntity } from '../../src/authz/policy-engine.js';

/** Policy tests are data (tests/cases/authz/*.json): a request, the expected decision and the deciding policies. */
type CaseFile = {
  description: string;
  entities: CedarEntity[];
  cases: Array<{ name: string; principal: string; action: string; resource: string; decision: 'allow' | 'deny'; policies: string[] }>;
};

const casesDir = path.resolve(import.meta.dirname, '../cases/authz');
const engine = loadPolicyEngine(policiesDir);
const uid = (text: string) => {
  const [type, id] = text.includes('::') ? text.split('::') : ['User', text];
  return { type: type!, id: id! };
};

for (const file of fs.readdirSync(casesDir).filter((name) => name.endsWith('.json'))) {
  const caseFile = JSON.parse(fs.readFileSync(path.join(casesDir, file), 'utf8')) as CaseFile;
  describe(`${file}: ${caseFile.description}`, () => {
    it.each(caseFile.cases)('$name', (testCase) => {
      const decision = engine.authorize({
        principal: uid(testCase.principal),
        action: testCase.action,
        resource: uid(testCase.resource),
        entities: caseFile.entities,
      });
      expect(decision.errors).toEqual([]);
      expect({ decision: decision.decision, policies: decision.policies }).toEqual({
        decision: testCase.decision,
        policies: [...testCase.policies].sort(),
      });
    });
  });
}

describe('a third-party assessor (art. 27)', () => {
  it('is allowed, of every action in the schema, only reading what an assessment rests on', () => {
    const schema = fs.readFileSync(path.join(policiesDir, 'authz.cedarschema'), 'utf8');
    const actions = [...schema.matchAll(/action "([^"]+)" appliesTo \{ principal: User, resource: (\w+) \}/g)].map(([, action, type]) => ({ action: action!, type: type! }));
    expect(actions.length).toBeGreaterThan(60);
    const ref = (type: string, id: string) => ({ __entity: { type: `PDS::${type}`, id } });
    const entities: CedarEntity[] = [
      { uid: { type: 'Platform', id: 'pds' }, attrs: {}, parents: [] },
      { uid: { type: 'Institution', id: 'power' }, attrs: {}, parents: [] },
      { uid: { type: 'Operator', id: 'op' }, attrs: { status: 'active' }, parents: [] },
      { uid: { type: 'Dataset', id: 'readings' }, attrs: { grade: 3, openData: false, institution: ref('Institution', 'power') }, parents: [] },
      { uid: { type: 'Licence', id: 'licence' }, attrs: { operator: ref('Operator', 'op'), status: 'active' }, parents: [] },
      { uid: { type: 'Job', id: 'job' }, attrs: { operator: ref('Operator', 'op') }, parents: [] },
      { uid: { type: 'Product', id: 'product' }, attrs: { operator: ref('Operator', 'op'), status: 'published' }, parents: [] },
      { uid: { type: 'User', id: 'assessor' }, attrs: { role: 'assessor', status: 'active', hasActiveLicence: false }, parents: [] },
    ] as CedarEntity[];
    const idOf: Record<string, string> = { Platform: 'pds', Institution: 'power', Operator: 'op', Dataset: 'readings', Licence: 'licence', Job: 'job', Product: 'product' };
    const allowed = actions.filter(({ action, type }) => {
      const decision = engine.authorize({ principal: { type: 'User', id: 'assessor' }, action, resource: { type, id: idOf[type]! }, entities });
      expect(decision.errors).toEqual([]);
      return decision.decision === 'allow';
    });
    // A1's list, and what every signed-in role may: the proofs, the catalogue, the list of published products.
    expect(allowed.map(({ action }) => action).sort()).toEqual([
      'audit:read-entries',
      'audit:read-proofs',
      'catalogue:list',
      'dataset:read',
      'dataset:read-uses',
      'incident:list',
      'licence:list',
      'licence:read',
      'operator:list',
      'operator:read',
      'product:list',
      'report:products',
      'report:supervision',
    ]);
  });
});

describe('the policy loader', () => {
  function policiesWith(extra: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'pds-policies-'));
    fs.copyFileSync(path.join(policiesDir, 'authz.cedarschema'), path.join(dir, 'authz.cedarschema'));
    for (const [name, text] of Object.entries(extra)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
  }

  it('refuses a policy without an @id', () => {
    const dir = policiesWith({ 'x.cedar': 'permit(principal, action, resource);' });
    expect(() => loadPolicyEngine(dir)).toThrow(PolicyLoadError);
  });

  it('refuses a policy that does not validate against the schema', () => {
    const dir = policiesWith({ 'x.cedar': '@id("typo") permit(principal, action, resource) when { principal.rol == "admin" };' });
    expect(() => loadPolicyEngine(dir)).toThrow(/typo/);
  });

  it('refuses two policies with one id', () => {
    const dir = policiesWith({ 'x.cedar': '@id("a") permit(principal, action, resource);\n@id("a") forbid(principal, action, resource);' });
    expect(() => loadPolicyEngine(dir)).toThrow(/used twice/);
  });

  it('every shipped policy is exercised by at least one case file', () => {
    const mentioned = new Set(
      fs
        .readdirSync(casesDir)
        .flatMap((file) => (JSON.parse(fs.readFileSync(path.join(casesDir, file), 'utf8')) as CaseFile).cases.flatMap((c) => c.policies)),
    );
    expect(engine.policyIds.filter((id) => !mentioned.has(id))).toEqual([]);
  });
});
