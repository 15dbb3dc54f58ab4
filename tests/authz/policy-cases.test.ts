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
